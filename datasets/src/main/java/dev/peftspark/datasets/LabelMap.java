package dev.peftspark.datasets;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.TreeSet;

/**
 * Class ids 0..k-1 and their names. Numeric maps come from integer labels (names "0".."k-1"); named maps from
 * string labels, sorted so the same set of names always gets the same ids. Read the test set with the
 * training set's map so both agree.
 */
public record LabelMap(List<String> names, boolean numeric) {

  public LabelMap {
    names = List.copyOf(names);
    if (names.isEmpty()) {
      throw new IllegalArgumentException("a label map needs at least one label");
    }
  }

  /** Integer labels 0..numClasses-1 used as they are. */
  public static LabelMap numeric(int numClasses) {
    if (numClasses < 1) {
      throw new IllegalArgumentException("numClasses must be >= 1, got " + numClasses);
    }
    List<String> names = new ArrayList<>(numClasses);
    for (int i = 0; i < numClasses; i++) {
      names.add(Integer.toString(i));
    }
    return new LabelMap(names, true);
  }

  /** Named labels: sorted distinct names get ids 0..k-1. */
  public static LabelMap ofNames(Collection<String> names) {
    return new LabelMap(new ArrayList<>(new TreeSet<>(names)), false);
  }

  public int size() {
    return names.size();
  }

  public String name(int id) {
    return names.get(id);
  }

  /** The id of a label name, or -1 when it is not in this map. */
  public int idOf(String name) {
    return names.indexOf(name);
  }

  /** For messages: "0..2" for numeric maps, "[neg, pos]" for named ones. */
  public String describe() {
    return numeric ? "0.." + (size() - 1) : names.toString();
  }
}
