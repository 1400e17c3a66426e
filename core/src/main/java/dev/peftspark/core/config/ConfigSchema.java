package dev.peftspark.core.config;

import java.lang.reflect.ParameterizedType;
import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The YAML shape of {@link JobConfig}, read off the records by reflection so the key list lives in one place:
 * a record component {@code batchSize} is the key {@code batch_size}; a nested record is a section.
 */
final class ConfigSchema {
  private ConfigSchema() {}

  static String snake(String camel) {
    return camel.replaceAll("([a-z0-9])([A-Z])", "$1_$2").toLowerCase();
  }

  static String join(String prefix, String key) {
    return prefix.isEmpty() ? key : prefix + "." + key;
  }

  /** Snake-case key → component, in declaration order. */
  static Map<String, RecordComponent> components(Class<?> type) {
    Map<String, RecordComponent> out = new LinkedHashMap<>();
    for (RecordComponent c : type.getRecordComponents()) out.put(snake(c.getName()), c);
    return out;
  }

  /** Every leaf key below {@code type}, dotted (e.g. {@code train.batch_size}). */
  static List<String> leafKeys(Class<?> type, String prefix) {
    List<String> out = new ArrayList<>();
    components(type).forEach((key, c) -> {
      if (c.getType().isRecord()) out.addAll(leafKeys(c.getType(), join(prefix, key)));
      else out.add(join(prefix, key));
    });
    return out;
  }

  /** The record as nested maps with snake_case keys (lists copied, nulls kept). */
  static Map<String, Object> toMap(Record r) {
    Map<String, Object> out = new LinkedHashMap<>();
    components(r.getClass()).forEach((key, c) -> {
      Object v = read(c, r);
      out.put(key, v instanceof Record nested ? toMap(nested) : v instanceof List<?> l ? new ArrayList<>(l) : v);
    });
    return out;
  }

  private static Object read(RecordComponent c, Record r) {
    try {
      return c.getAccessor().invoke(r);
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("cannot read " + c, e);
    }
  }

  /**
   * Lays {@code user} over {@code base} (both nested maps for {@code type}); rejects keys {@code type} does not
   * have, naming the known ones and the closest.
   */
  @SuppressWarnings("unchecked")
  static void merge(Map<String, Object> base, Map<?, ?> user, Class<?> type, String prefix) {
    Map<String, RecordComponent> known = components(type);
    for (Map.Entry<?, ?> e : user.entrySet()) {
      String key = String.valueOf(e.getKey());
      RecordComponent c = known.get(key);
      if (c == null) throw unknownKey(type, prefix, key);
      String path = join(prefix, key);
      Object v = e.getValue();
      if (c.getType().isRecord()) {
        if (v == null) continue; // an empty section keeps its defaults
        if (!(v instanceof Map<?, ?> m)) {
          throw new ConfigException(path, "expected a section with keys " + String.join(", ", known(c.getType()))
              + ", got " + describe(v));
        }
        merge((Map<String, Object>) base.get(key), m, c.getType(), path);
      } else {
        base.put(key, v);
      }
    }
  }

  /** The component a dotted key names, or a {@link ConfigException} naming what is known. */
  static RecordComponent lookup(String dotted) {
    Class<?> type = JobConfig.class;
    String prefix = "";
    RecordComponent c = null;
    for (String part : dotted.split("\\.", -1)) {
      if (c != null && !c.getType().isRecord()) throw new ConfigException(prefix, "is not a section");
      if (c != null) type = c.getType();
      c = components(type).get(part);
      if (c == null) throw unknownKey(type, prefix, part);
      prefix = join(prefix, part);
    }
    if (c.getType().isRecord()) {
      throw new ConfigException(dotted, "is a section; set one of its keys (" + String.join(", ", known(c.getType()))
          + "), e.g. " + dotted + "." + known(c.getType()).get(0) + "=...");
    }
    return c;
  }

  @SuppressWarnings("unchecked")
  static void put(Map<String, Object> root, String dotted, Object value) {
    String[] parts = dotted.split("\\.");
    Map<String, Object> m = root;
    for (int i = 0; i < parts.length - 1; i++) m = (Map<String, Object>) m.get(parts[i]);
    m.put(parts[parts.length - 1], value);
  }

  private static List<String> known(Class<?> type) {
    return new ArrayList<>(components(type).keySet());
  }

  private static ConfigException unknownKey(Class<?> type, String prefix, String key) {
    List<String> known = known(type);
    String where = prefix.isEmpty() ? "at the top level" : "in section '" + prefix + "'";
    String msg = "unknown key " + where + "; known keys: " + String.join(", ", known);
    String hint = suggest(key, known, prefix);
    return new ConfigException(join(prefix, key), msg + (hint == null ? "" : "; did you mean '" + hint + "'?"));
  }

  /** The same key in another section, else the closest key in this one (by edits, then by prefix). */
  private static String suggest(String key, List<String> known, String prefix) {
    String k = snake(key);
    String elsewhere = leafKeys(JobConfig.class, "").stream()
        .filter(d -> d.endsWith("." + k) || d.equals(k)).findFirst().orElse(null);
    if (elsewhere != null) return elsewhere;
    String best = known.stream().min(Comparator.comparingInt(s -> distance(k, s))).orElse(null);
    if (best != null && distance(k, best) <= Math.max(2, k.length() / 3)) return join(prefix, best);
    return known.stream().filter(s -> k.startsWith(s) || s.startsWith(k)) // lrate → lr, rank → r
        .max(Comparator.comparingInt(String::length)).map(s -> join(prefix, s)).orElse(null);
  }

  static int distance(String a, String b) {
    int[] prev = new int[b.length() + 1];
    int[] cur = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) prev[j] = j;
    for (int i = 1; i <= a.length(); i++) {
      cur[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
        cur[j] = Math.min(sub, Math.min(prev[j], cur[j - 1]) + 1);
      }
      int[] t = prev; prev = cur; cur = t;
    }
    return prev[b.length()];
  }

  /** Builds {@code type} from a complete nested map (defaults already merged in), converting scalars. */
  static <T> T bind(Class<T> type, Map<?, ?> map, String prefix) {
    RecordComponent[] cs = type.getRecordComponents();
    Object[] args = new Object[cs.length];
    for (int i = 0; i < cs.length; i++) {
      String key = snake(cs[i].getName());
      String path = join(prefix, key);
      Object v = map.get(key);
      args[i] = cs[i].getType().isRecord() ? bind(cs[i].getType(), (Map<?, ?>) v, path) : convert(cs[i], v, path);
    }
    try {
      var ctor = type.getDeclaredConstructor(Arrays.stream(cs).map(RecordComponent::getType).toArray(Class[]::new));
      return ctor.newInstance(args);
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("cannot build " + type.getSimpleName(), e);
    }
  }

  static Object convert(RecordComponent c, Object v, String path) {
    Class<?> t = c.getType();
    if (t == String.class) {
      if (v == null || v instanceof String) return v;
      if (v instanceof Number || v instanceof Boolean) return String.valueOf(v);
      throw new ConfigException(path, "expected a string, got " + describe(v));
    }
    if (t == List.class) return toList(c, v, path);
    if (t == Map.class) return toStringMap(v, path);
    if (v == null) throw new ConfigException(path, "expected " + kind(t) + ", got nothing");
    if (t == int.class || t == long.class) {
      Long n = null;
      if (v instanceof Integer || v instanceof Long || v instanceof Short) n = ((Number) v).longValue();
      else if (v instanceof java.math.BigInteger b && b.bitLength() < 64) n = b.longValue();
      else if (v instanceof String s) {
        try { n = Long.parseLong(s.trim()); } catch (NumberFormatException ignored) { /* reported below */ }
      }
      if (n == null || (t == int.class && (n < Integer.MIN_VALUE || n > Integer.MAX_VALUE))) {
        throw new ConfigException(path, "expected " + kind(t) + ", got " + describe(v));
      }
      return t == int.class ? (Object) n.intValue() : (Object) n;
    }
    if (t == double.class) {
      if (v instanceof Number n) return n.doubleValue();
      if (v instanceof String s) {
        try { return Double.parseDouble(s.trim()); } catch (NumberFormatException ignored) { /* reported below */ }
      }
      throw new ConfigException(path, "expected a number, got " + describe(v));
    }
    if (t == boolean.class) {
      if (v instanceof Boolean b) return b;
      if (v instanceof String s && (s.equalsIgnoreCase("true") || s.equalsIgnoreCase("false"))) {
        return Boolean.parseBoolean(s);
      }
      throw new ConfigException(path, "expected true or false, got " + describe(v));
    }
    throw new IllegalStateException("unsupported config type " + t + " at " + path);
  }

  private static List<String> toList(RecordComponent c, Object v, String path) {
    if (!(c.getGenericType() instanceof ParameterizedType p) || p.getActualTypeArguments()[0] != String.class) {
      throw new IllegalStateException("only List<String> is supported, at " + path);
    }
    if (v == null) return List.of();
    if (v instanceof String s) {
      return Arrays.stream(s.split(",")).map(String::trim).filter(x -> !x.isEmpty()).toList();
    }
    if (v instanceof List<?> l) {
      List<String> out = new ArrayList<>();
      for (Object o : l) {
        if (o instanceof Map<?, ?> || o instanceof List<?> || o == null) {
          throw new ConfigException(path, "expected a list of strings, got an element " + describe(o));
        }
        out.add(String.valueOf(o).trim());
      }
      return List.copyOf(out);
    }
    throw new ConfigException(path, "expected a list of strings (or one string), got " + describe(v));
  }

  /** A map of scalars (rank_pattern: {query: 4}), values kept as strings for the caller to check. */
  private static Map<String, String> toStringMap(Object v, String path) {
    if (v == null) return Map.of();
    if (!(v instanceof Map<?, ?> m)) throw new ConfigException(path, "expected a map such as {query: 4}, got " + describe(v));
    Map<String, String> out = new LinkedHashMap<>();
    for (Map.Entry<?, ?> e : m.entrySet()) {
      Object x = e.getValue();
      if (x == null || x instanceof Map<?, ?> || x instanceof List<?>) {
        throw new ConfigException(path + "." + e.getKey(), "expected a number, got " + describe(x));
      }
      out.put(String.valueOf(e.getKey()), String.valueOf(x).trim());
    }
    return java.util.Collections.unmodifiableMap(out);
  }

  private static String kind(Class<?> t) {
    return t == int.class || t == long.class ? "an integer" : t == double.class ? "a number" : "true or false";
  }

  static String describe(Object v) {
    if (v == null) return "nothing";
    if (v instanceof Map<?, ?> m) {
      return "a section {" + m.keySet().stream().map(String::valueOf).collect(Collectors.joining(", ")) + "}";
    }
    if (v instanceof List<?> l) return "a list " + l;
    if (v instanceof String s) return "'" + s + "'";
    return String.valueOf(v);
  }
}
