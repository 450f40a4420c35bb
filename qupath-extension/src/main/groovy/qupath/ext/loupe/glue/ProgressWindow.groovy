// A small non-modal progress window (message, bar, detail line, Cancel) for long server work:
// retraining and batch scoring. Safe to update from any thread (it re-posts to the JavaFX thread).
package qupath.ext.loupe.glue

import groovy.transform.CompileStatic
import javafx.application.Platform
import javafx.geometry.Insets
import javafx.scene.Scene
import javafx.scene.control.Button
import javafx.scene.control.Label
import javafx.scene.control.ProgressBar
import javafx.scene.layout.VBox
import javafx.stage.Stage
import javafx.stage.Window

@CompileStatic
class ProgressWindow {
    private final Stage stage = new Stage()
    private final Label message = new Label('starting…')
    private final Label detail = new Label('')
    private final ProgressBar bar = new ProgressBar(-1)
    private final Button cancel = new Button('Cancel')
    private volatile boolean cancelled

    /** Create on the JavaFX thread; `onCancel` runs there too. */
    ProgressWindow(Window owner, String title, Runnable onCancel) {
        stage.title = title
        if (owner != null) stage.initOwner(owner)
        bar.maxWidth = Double.MAX_VALUE
        message.wrapText = true
        detail.wrapText = true
        cancel.onAction = { e ->
            cancelled = true
            cancel.disable = true
            cancel.text = 'Cancelling…'
            onCancel?.run()
        }
        VBox box = new VBox(8, message, bar, detail, cancel)
        box.padding = new Insets(12)
        box.prefWidth = 420
        stage.scene = new Scene(box)
    }

    boolean isCancelled() { cancelled }

    void show() { fx { stage.show() } }

    /** fraction in 0–1, or -1 for indeterminate. */
    void update(String msg, double fraction, String details = null) {
        fx {
            message.text = msg
            bar.progress = fraction < 0 ? ProgressBar.INDETERMINATE_PROGRESS : Math.min(1d, fraction)
            if (details != null) detail.text = details
        }
    }

    /** Leaves the window open with a final message and a Close button. */
    void finish(String msg) {
        fx {
            message.text = msg
            bar.progress = 1
            cancel.disable = false
            cancel.text = 'Close'
            cancel.onAction = { e -> stage.close() }
        }
    }

    void close() { fx { stage.close() } }

    private static void fx(Runnable r) {
        if (Platform.isFxApplicationThread()) r.run() else Platform.runLater(r)
    }
}
