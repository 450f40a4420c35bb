// Review candidates: a table of the image's Loupe objects, least confident (lowest energy) first, with
// Accept / Reject / Edit buttons and keys A, R, E (N or ↓ moves on). Selecting a row selects the object
// and centres the viewer on it; a decision recolours the object (class Loupe accepted / rejected /
// edited) and moves to the next pending one, so progress is visible on the slide as in the table.
// Runs on the JavaFX thread only.
package qupath.ext.loupe.glue

import groovy.transform.CompileStatic
import javafx.beans.property.ReadOnlyObjectWrapper
import javafx.beans.property.ReadOnlyStringWrapper
import javafx.beans.value.ObservableValue
import javafx.collections.FXCollections
import javafx.geometry.Insets
import javafx.scene.Scene
import javafx.scene.control.Button
import javafx.scene.control.Label
import javafx.scene.control.TableColumn
import javafx.scene.control.TableView
import javafx.scene.input.KeyCode
import javafx.scene.input.KeyEvent
import javafx.scene.layout.BorderPane
import javafx.scene.layout.HBox
import javafx.stage.Stage
import javafx.util.Callback
import qupath.ext.loupe.core.CandidateRow
import qupath.ext.loupe.core.Decision
import qupath.ext.loupe.core.LoupeException
import qupath.ext.loupe.core.ReviewState
import qupath.ext.loupe.core.ReviewStatus
import qupath.fx.dialogs.Dialogs
import qupath.lib.gui.viewer.QuPathViewer
import qupath.lib.objects.PathObject
import qupath.lib.objects.hierarchy.PathObjectHierarchy

@CompileStatic
class ReviewWindow {
    final Stage stage = new Stage()
    private final QuPathViewer viewer
    private final ReviewState state
    private final TableView<CandidateRow> table = new TableView<>()
    private final Label status = new Label()
    private final Runnable onMore

    ReviewWindow(QuPathViewer viewer, ReviewState state, Runnable onMore) {
        this.viewer = viewer
        this.state = state
        this.onMore = onMore
        stage.title = 'Loupe: review candidates'
        table.columns.addAll(
                column('Energy', { CandidateRow r -> fmt(r.energy, 3) }),
                column('Probability', { CandidateRow r -> fmt(r.probability, 3) }),
                column('Area (px²)', { CandidateRow r -> fmt(r.area, 0) }),
                column('Status', { CandidateRow r -> r.status.wire }),
                column('Model', { CandidateRow r -> r.modelVersion ?: '' }))
        table.columnResizePolicy = TableView.CONSTRAINED_RESIZE_POLICY
        table.selectionModel.selectedItemProperty().addListener({ ObservableValue<? extends CandidateRow> o, CandidateRow old, CandidateRow now -> focus(now) } as javafx.beans.value.ChangeListener<CandidateRow>)

        Button accept = new Button('Accept (A)'), reject = new Button('Reject (R)'), edit = new Button('Edit (E)')
        Button next = new Button('Next (N)'), more = new Button('More candidates'), refresh = new Button('Refresh')
        accept.onAction = { e -> decide(ReviewStatus.ACCEPTED) }
        reject.onAction = { e -> decide(ReviewStatus.REJECTED) }
        edit.onAction = { e -> decide(ReviewStatus.EDITED) }
        next.onAction = { e -> selectNext() }
        more.onAction = { e -> onMore?.run() }
        refresh.onAction = { e -> reload() }
        HBox buttons = new HBox(6, accept, reject, edit, next, more, refresh)
        buttons.padding = new Insets(6)
        BorderPane root = new BorderPane(table)
        root.top = status
        root.bottom = buttons
        BorderPane.setMargin(status, new Insets(6))
        Scene scene = new Scene(root, 560, 480)
        scene.addEventFilter(KeyEvent.KEY_PRESSED, { KeyEvent e ->
            switch (e.code) {
                case KeyCode.A: decide(ReviewStatus.ACCEPTED); e.consume(); break
                case KeyCode.R: decide(ReviewStatus.REJECTED); e.consume(); break
                case KeyCode.E: decide(ReviewStatus.EDITED); e.consume(); break
                case KeyCode.N: selectNext(); e.consume(); break
                default: break
            }
        } as javafx.event.EventHandler<KeyEvent>)
        stage.scene = scene
        reload()
    }

    private static TableColumn<CandidateRow, String> column(String name, Closure<String> value) {
        TableColumn<CandidateRow, String> c = new TableColumn<>(name)
        c.cellValueFactory = { TableColumn.CellDataFeatures<CandidateRow, String> f -> new ReadOnlyStringWrapper(value.call(f.value)) } as Callback<TableColumn.CellDataFeatures<CandidateRow, String>, ObservableValue<String>>
        c.sortable = false   // the queue order (lowest energy first) is the point
        return c
    }

    private static String fmt(Double v, int decimals) { v == null ? '' : String.format(Locale.ROOT, "%.${decimals}f", v) }

    /** Re-reads the image's Loupe objects (after a prediction, an edit, or More candidates). */
    void reload() {
        PathObjectHierarchy h = viewer.getHierarchy()
        if (h == null) return
        String selected = table.selectionModel.selectedItem?.id
        state.load(QuPathObjects.annotations(h))
        table.items = FXCollections.observableArrayList(state.sorted())
        if (selected != null) {
            CandidateRow r = table.items.find { CandidateRow x -> x.id == selected }
            if (r != null) table.selectionModel.select(r)
        }
        showProgress()
    }

    private void showProgress() {
        Map<ReviewStatus, Integer> p = state.progress()
        status.text = "${table.items.size()} candidates — ${p[ReviewStatus.PENDING]} pending, ${p[ReviewStatus.ACCEPTED]} accepted, ${p[ReviewStatus.REJECTED]} rejected, ${p[ReviewStatus.EDITED]} edited"
    }

    private void focus(CandidateRow row) {
        if (row == null) return
        PathObject o = QuPathObjects.byServerId(viewer.getHierarchy(), row.id)
        if (o == null) return
        viewer.setSelectedObject(o)
        viewer.centerROI(o.getROI())
    }

    private void decide(ReviewStatus s) {
        CandidateRow row = table.selectionModel.selectedItem
        if (row == null) return
        PathObject o = QuPathObjects.byServerId(viewer.getHierarchy(), row.id)
        if (o == null) { reload(); return }
        try {
            Decision d = state.decide(row.id, s)
            QuPathObjects.apply(viewer.getHierarchy(), o, d)
        } catch (LoupeException e) {
            Dialogs.showErrorNotification('Loupe', e.message)
            return
        }
        table.refresh()
        showProgress()
        // Edit keeps the object selected so QuPath's tools can reshape it.
        if (s != ReviewStatus.EDITED) selectNext()
    }

    private void selectNext() {
        CandidateRow next = state.nextPending(table.selectionModel.selectedItem?.id)
        if (next == null) { status.text = status.text + ' — all reviewed: Send corrections'; return }
        CandidateRow r = table.items.find { CandidateRow x -> x.id == next.id }
        table.selectionModel.select(r)
        table.scrollTo(r)
    }

    void show() { stage.show(); stage.toFront() }
}
