package qupath.lib.objects.classes;

/** Stand-in: qupath-core PathClass (singletons; colour only used on creation, hence setColor). */
public final class PathClass {
    public static PathClass fromString(String name, Integer rgb) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public void setColor(Integer rgb) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public String getName() { throw new UnsupportedOperationException("compile-only stand-in"); }
}
