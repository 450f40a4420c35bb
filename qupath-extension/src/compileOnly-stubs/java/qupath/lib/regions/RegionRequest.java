package qupath.lib.regions;

/** Stand-in: qupath-core RegionRequest. */
public class RegionRequest {
    public static RegionRequest createInstance(String path, double downsample, int x, int y, int width, int height, int z, int t) { throw new UnsupportedOperationException("compile-only stand-in"); }
}
