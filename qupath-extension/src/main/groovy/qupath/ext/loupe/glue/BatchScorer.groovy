// Scores one project image headlessly: read it, predict the whole image through the server (by path
// or inline pixels), add the candidates, save the image's data, close its server. Shared by Batch score
// project and by scripts/score-project.groovy ("Run for project").
package qupath.ext.loupe.glue

import groovy.transform.CompileStatic
import qupath.ext.loupe.core.AreaPrediction
import qupath.ext.loupe.core.LoupeClient
import qupath.ext.loupe.core.ProgressListener
import qupath.ext.loupe.core.Region
import qupath.ext.loupe.core.SlideRef
import qupath.lib.images.ImageData
import qupath.lib.images.servers.ImageServer
import qupath.lib.projects.ProjectImageEntry

import java.awt.image.BufferedImage

@CompileStatic
final class BatchScorer {
    private BatchScorer() {}

    /** Returns the number of objects added. */
    static int scoreEntry(LoupeClient c, ProjectImageEntry<BufferedImage> entry, double downsample, String pixelMode, ProgressListener p) {
        ImageData<BufferedImage> data = entry.readImageData()
        ImageServer<BufferedImage> server = data.getServer()
        try {
            int n = scoreImage(c, data, entry.getURIs(), entry.getImageName(), downsample, pixelMode, p)
            entry.saveImageData(data)
            return n
        } finally {
            server.close()   // ImageData is AutoCloseable only from QuPath 0.6
        }
    }

    static int scoreImage(LoupeClient c, ImageData<BufferedImage> data, Collection<URI> uris, String name, double downsample, String pixelMode, ProgressListener p) {
        ImageServer<BufferedImage> server = data.getServer()
        SlideRef ref = c.resolveSlide(uris, name, pixelMode, p)
        Region all = new Region(0, 0, server.getWidth(), server.getHeight())
        AreaPrediction r = c.predictArea(ref, all, downsample, QuPathObjects.pixels(server, 0, 0), p)
        return QuPathObjects.addCandidates(data.getHierarchy(), r.features, all).size()
    }
}
