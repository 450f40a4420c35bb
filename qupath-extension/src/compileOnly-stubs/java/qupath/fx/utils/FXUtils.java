package qupath.fx.utils;

/** Stand-in: qupath-fxtras FXUtils. */
public class FXUtils {
    public static void runOnApplicationThread(Runnable runnable) { throw new UnsupportedOperationException("compile-only stand-in"); }
}
