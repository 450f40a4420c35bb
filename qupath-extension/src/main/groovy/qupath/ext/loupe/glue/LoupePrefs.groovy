// The extension's persistent preferences (QuPath's PathPrefs, java.util.prefs under the QuPath
// version's node), all namespaced `loupe.*`. Read on the JavaFX thread; values are copied into the
// work a command hands to a worker thread.
package qupath.ext.loupe.glue

import groovy.transform.CompileStatic
import javafx.beans.property.DoubleProperty
import javafx.beans.property.IntegerProperty
import javafx.beans.property.StringProperty
import qupath.lib.gui.prefs.PathPrefs

@CompileStatic
final class LoupePrefs {
    private LoupePrefs() {}

    static final StringProperty serverUrl = PathPrefs.createPersistentPreference('loupe.serverUrl', 'http://localhost:8080')
    /** Empty when the server runs without --token (loopback only). */
    static final StringProperty token = PathPrefs.createPersistentPreference('loupe.token', '')
    /** Level-0 pixels per model pixel used for predictions (the model's µm/px over the slide's). */
    static final DoubleProperty downsample = PathPrefs.createPersistentPreference('loupe.downsample', 2.0d)
    /** How the server gets pixels: auto (path when it can read the file, else inline), path, inline. */
    static final StringProperty pixelMode = PathPrefs.createPersistentPreference('loupe.pixelMode', 'auto')
    /** Candidates fetched per Review request (≤ the server's maxCandidates). */
    static final IntegerProperty candidateLimit = PathPrefs.createPersistentPreference('loupe.candidateLimit', 50)
}
