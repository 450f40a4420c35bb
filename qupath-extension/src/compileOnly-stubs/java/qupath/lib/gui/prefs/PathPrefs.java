package qupath.lib.gui.prefs;

import javafx.beans.property.DoubleProperty;
import javafx.beans.property.IntegerProperty;
import javafx.beans.property.StringProperty;

/** Stand-in: qupath-gui-fx PathPrefs persistent preferences (java.util.prefs backed). */
public class PathPrefs {
    public static StringProperty createPersistentPreference(String name, String defaultValue) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public static IntegerProperty createPersistentPreference(String name, int defaultValue) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public static DoubleProperty createPersistentPreference(String name, double defaultValue) { throw new UnsupportedOperationException("compile-only stand-in"); }
}
