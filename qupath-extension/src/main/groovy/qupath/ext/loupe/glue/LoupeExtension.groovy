// The QuPath entry point (listed in META-INF/services): installs Extensions › Loupe and nothing else.
// All behaviour is in LoupeCommands (glue) and the protocol core.
package qupath.ext.loupe.glue

import groovy.transform.CompileStatic
import javafx.event.ActionEvent
import javafx.event.EventHandler
import javafx.scene.control.Menu
import javafx.scene.control.MenuItem
import javafx.scene.control.SeparatorMenuItem
import qupath.lib.common.Version
import qupath.lib.gui.QuPathGUI
import qupath.lib.gui.extensions.QuPathExtension

@CompileStatic
class LoupeExtension implements QuPathExtension {
    private static final ResourceBundle STRINGS = ResourceBundle.getBundle('qupath.ext.loupe.strings')
    private boolean installed

    @Override
    void installExtension(QuPathGUI qupath) {
        if (installed) return
        installed = true
        LoupeCommands c = new LoupeCommands(qupath)
        Menu menu = qupath.getMenu('Extensions>' + STRINGS.getString('menu'), true)
        MenuItem status = new MenuItem()
        status.textProperty().bind(c.statusText)
        status.disable = true
        menu.items.addAll(
                status,
                item('connect') { c.connect() },
                new SeparatorMenuItem(),
                item('predictView') { c.predictView() },
                item('predictSelected') { c.predictSelected() },
                item('review') { c.reviewCandidates() },
                item('sendCorrections') { c.sendCorrections() },
                new SeparatorMenuItem(),
                item('retrainQuick') { c.retrain('quick') },
                item('retrainFull') { c.retrain('full') },
                item('models') { c.models() },
                new SeparatorMenuItem(),
                item('batchScore') { c.batchScoreProject() })
    }

    /** Menu items carry no accelerators by default, so QuPath's own shortcuts keep working; the review window has its own keys. */
    private static MenuItem item(String key, Closure<?> action) {
        MenuItem m = new MenuItem(STRINGS.getString("command.${key}"))
        m.onAction = { ActionEvent e -> action.call() } as EventHandler<ActionEvent>
        return m
    }

    @Override
    String getName() { STRINGS.getString('name') }

    @Override
    String getDescription() { STRINGS.getString('description') }

    @Override
    Version getQuPathVersion() { Version.parse('0.5.0') }
}
