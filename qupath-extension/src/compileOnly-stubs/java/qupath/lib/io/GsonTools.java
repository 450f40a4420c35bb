package qupath.lib.io;

import com.google.gson.Gson;

/** Stand-in: qupath-core GsonTools (its Gson reads and writes QuPath's GeoJSON dialect). */
public class GsonTools {
    public static Gson getInstance() { throw new UnsupportedOperationException("compile-only stand-in"); }
}
