// The scripting API: what QuPath scripts (and the workflow steps the menu commands record) call.
// Each call connects with the saved preferences, does its work, and disconnects; blocking, so run it
// from a script or a worker thread, never from the JavaFX thread.
package qupath.ext.loupe.glue

import groovy.transform.CompileStatic
import qupath.ext.loupe.core.AreaPrediction
import qupath.ext.loupe.core.LoupeClient
import qupath.ext.loupe.core.ProgressListener
import qupath.ext.loupe.core.Region
import qupath.ext.loupe.core.SlideRef
import qupath.lib.images.ImageData
import qupath.lib.images.servers.ImageServer
import qupath.lib.plugins.workflow.DefaultScriptableWorkflowStep

import java.awt.image.BufferedImage

@CompileStatic
final class LoupeScripting {
    private LoupeScripting() {}

    private static final ProgressListener PRINT = { String msg, double f -> println "Loupe: ${msg}" } as ProgressListener

    static LoupeClient connect() {
        LoupeClient c = new LoupeClient(LoupePrefs.serverUrl.get(), LoupePrefs.token.get() ?: null)
        try {
            c.connect()
            return c
        } catch (RuntimeException e) {
            c.close()
            throw e
        }
    }

    /** Predicts the whole image; returns the number of objects added. */
    static int scoreImage(ImageData<BufferedImage> data) {
        ImageServer<BufferedImage> server = data.getServer()
        LoupeClient c = connect()
        try {
            return BatchScorer.scoreImage(c, data, server.getURIs(), new File(server.getPath()).name, LoupePrefs.downsample.get(), LoupePrefs.pixelMode.get(), PRINT)
        } finally {
            c.close()
        }
    }

    /** Predicts one level-0 rectangle; returns the number of objects added. */
    static int predictRegion(ImageData<BufferedImage> data, int x, int y, int width, int height) {
        ImageServer<BufferedImage> server = data.getServer()
        Region area = new Region(x, y, width, height).clip(server.getWidth(), server.getHeight())
        if (area == null) return 0
        LoupeClient c = connect()
        try {
            SlideRef ref = c.resolveSlide(server.getURIs(), new File(server.getPath()).name, LoupePrefs.pixelMode.get(), PRINT)
            AreaPrediction r = c.predictArea(ref, area, LoupePrefs.downsample.get(), QuPathObjects.pixels(server, 0, 0), PRINT)
            return QuPathObjects.addCandidates(data.getHierarchy(), r.features, area).size()
        } finally {
            c.close()
        }
    }

    /** Records a prediction in the image's command history, so "Create script" can replay it. */
    static void recordPredictRegion(ImageData<BufferedImage> data, Region area) {
        data.getHistoryWorkflow().addStep(new DefaultScriptableWorkflowStep('Loupe: predict region',
                "qupath.ext.loupe.glue.LoupeScripting.predictRegion(getCurrentImageData(), ${area.x}, ${area.y}, ${area.width}, ${area.height})".toString()))
    }
}
