// Writes the GPT-2 BPE reference fixture for Gpt2BpeTest with the JavaScript encoder that ships in the npm
// package gpt-3-encoder@1.1.4 (Encoder.js, a port of OpenAI's encoder.py), an implementation independent of
// the Hugging Face tokenizers library that Gpt2Bpe runs on.
//
// Usage (from the repository root):
//   mkdir -p /tmp/gpt3 && tar xzf $PEFT_SPARK_DATA_CACHE/gpt-3-encoder-1.1.4.tgz -C /tmp/gpt3
//   node datasets/src/test/node/make-gpt2-fixture.js /tmp/gpt3/package \
//     > datasets/src/test/resources/lm/gpt2-fixture.json
const path = require('path');

const folder = process.argv[2];
if (!folder) {
  console.error('usage: node make-gpt2-fixture.js EXTRACTED_GPT_3_ENCODER_PACKAGE_FOLDER');
  process.exit(2);
}
const encoder = require(path.resolve(folder, 'Encoder.js'));

const texts = [
  // Sentences of the Brown corpus (ca01, cj01, ck01, cr01), detokenized.
  'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.',
  'The jury further said in term-end presentments that the City Executive Committee, which had over-all charge of the election, "deserves the praise and thanks of the City of Atlanta" for the manner in which the election was conducted.',
  'It has recently become practical to use the radio emission of the moon and planets as a new source of information about these bodies and their atmospheres.',
  'Scotty did not go back to school. His parents talked seriously and lengthily to their own doctor and to a specialist at the University Hospital -- Mr. McKinley was entitled to a discount for members of his family -- and it was decided it would be best for him to take the remainder of the term off, spend a lot of time in bed and, for the rest, do pretty much as he chose.',
  'It was among these that Hinkle identified a photograph of Barco! For it seems that Barco, fancying himself a ladies\' man (and why not, after seven marriages?), had listed himself for Mormon Beard roles at the instigation of his fourth murder.',
  // Plain cases and known tokens.
  'Hello world',
  'hello world',
  ' Hello world',
  'Hello, world!',
  'The quick brown fox jumps over the lazy dog.',
  '',
  ' ',
  'a',
  // Contractions (the pre-tokenizer splits them off) and apostrophes.
  "I'm sure you'll see they've said it's not what we'd done, isn't it?",
  "DON'T SHOUT, it's 'quoted' and O'Brien's.",
  "rock 'n' roll",
  // Numbers.
  '3.14159 and 2,718,281 and 1e-10 and -42 and 007',
  'In 1961, 13,500 people paid $1,250.00 each (about 12.5%).',
  'Phone: +1 (555) 010-9999, ext. 1234567890123',
  // Whitespace runs, tabs and newlines.
  'two  spaces,   three,    four',
  'trailing spaces   ',
  '   leading spaces',
  'line one\nline two\n\nparagraph\n',
  '\ttab\tseparated\tcolumns\t',
  '\r\nwindows\r\nlines\r\n',
  'mixed \t \n whitespace \n\n\n  end',
  // Punctuation and code.
  'def f(x):\n    return x ** 2  # square\n',
  '{"key": [1, 2, 3], "nested": {"a": null}}',
  '<html><body class="main">&nbsp;&amp;</body></html>',
  '!!! ??? ... --- *** ### @@@ ~~~',
  'e-mail: someone@example.com, url: https://example.org/path?q=1&r=2#frag',
  // Unicode: accents, other scripts, symbols, emoji (several UTF-8 bytes per character).
  'naïve café résumé coöperate façade',
  'Straße, Größe, Ærøskøbing, Łódź',
  'Привет, мир! Как дела?',
  'Γειά σου Κόσμε',
  'こんにちは世界',
  '你好，世界。',
  '안녕하세요',
  'مرحبا بالعالم',
  'שלום עולם',
  'नमस्ते दुनिया',
  'emoji: 😀🎉👍🏽 and 🇺🇸 flags',
  'math: ∑ ∫ √ ∞ ≤ ≥ ≠ π α β γ',
  'quotes: “curly” ‘single’ «guillemets» — dash – en',
  'zero\u200bwidth and non\u00a0breaking',
  'Ω℃™©®°±×÷',
  // Long words and repetitions.
  'antidisestablishmentarianism supercalifragilisticexpialidocious',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  'ha ha ha ha ha hahahahaha',
  'CamelCaseIdentifier snake_case_name kebab-case-name SCREAMING_CASE',
];

const out = texts.map(text => ({ text, ids: encoder.encode(text) }));
for (const { text, ids } of out) {
  if (encoder.decode(ids) !== text) {
    console.error('reference encoder does not round-trip: ' + JSON.stringify(text));
    process.exit(1);
  }
}
process.stdout.write('[\n' + out.map(r => '  ' + JSON.stringify(r)).join(',\n') + '\n]\n');
