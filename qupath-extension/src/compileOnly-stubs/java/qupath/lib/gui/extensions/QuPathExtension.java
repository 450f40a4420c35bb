package qupath.lib.gui.extensions;

import qupath.lib.common.Version;
import qupath.lib.gui.QuPathGUI;

/** Stand-in: qupath-gui-fx QuPathExtension (0.5/0.6). */
public interface QuPathExtension {
    void installExtension(QuPathGUI qupath);
    String getName();
    String getDescription();
    default Version getQuPathVersion() { throw new UnsupportedOperationException("compile-only stand-in"); }
}
