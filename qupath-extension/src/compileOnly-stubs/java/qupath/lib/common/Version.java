package qupath.lib.common;

/** Stand-in: qupath-core Version. */
public class Version {
    public static Version parse(String versionString) { throw new UnsupportedOperationException("compile-only stand-in"); }
}
