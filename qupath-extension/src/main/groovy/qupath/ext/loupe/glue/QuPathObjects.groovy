// The one place that converts between QuPath objects and the core's JSON: server candidates become
// annotations through QuPath's own GeoJSON reader (GsonTools), and annotations become ObjectSnapshots
// through QuPath's own writer, so the core's rules see exactly what QuPath stores. Also applies review
// decisions (class + colour + loupe.* metadata) and reads pixels for inline prediction.
// Hierarchy changes may happen off the JavaFX thread (the viewer re-posts its events); viewer calls may not.
package qupath.ext.loupe.glue

import com.google.gson.Gson
import com.google.gson.JsonElement
import com.google.gson.JsonObject
import groovy.transform.CompileStatic
import qupath.ext.loupe.core.Decision
import qupath.ext.loupe.core.GeoJson
import qupath.ext.loupe.core.Keys
import qupath.ext.loupe.core.LoupeException
import qupath.ext.loupe.core.ObjectSnapshot
import qupath.ext.loupe.core.PixelSource
import qupath.ext.loupe.core.Region
import qupath.ext.loupe.core.ReviewStatus
import qupath.lib.images.servers.ImageServer
import qupath.lib.io.GsonTools
import qupath.lib.objects.PathObject
import qupath.lib.objects.classes.PathClass
import qupath.lib.objects.hierarchy.PathObjectHierarchy
import qupath.lib.regions.RegionRequest

import javax.imageio.ImageIO
import java.awt.Graphics2D
import java.awt.image.BufferedImage

@CompileStatic
final class QuPathObjects {
    private QuPathObjects() {}

    /** GsonTools.getInstance() builds a new Gson each call. */
    private static Gson gson

    static synchronized Gson gson() { gson ?: (gson = GsonTools.getInstance()) }

    static ObjectSnapshot snapshot(PathObject o) {
        JsonElement e = gson().toJsonTree(o, PathObject)
        return GeoJson.readQuPathFeature(e.asJsonObject)
    }

    static List<ObjectSnapshot> annotations(PathObjectHierarchy h) {
        List<ObjectSnapshot> out = []
        for (PathObject o : h.getAnnotationObjects()) out << snapshot(o)
        return out
    }

    static PathObject byServerId(PathObjectHierarchy h, String serverId) {
        for (PathObject o : h.getAnnotationObjects()) if (o.getMetadata()[Keys.OBJECT_ID] == serverId) return o
        return null
    }

    static PathClass reviewClass(ReviewStatus s) {
        PathClass pc = PathClass.fromString(s.className, s.packedRgb())
        pc.setColor(s.packedRgb())   // the class may already exist with another colour
        return pc
    }

    /**
     * Adds QuPath-ready candidate features. Pending candidates of an earlier prediction whose centre lies
     * in `area` are replaced; objects already reviewed are kept and their id is not added twice.
     * Returns the server ids added.
     */
    static List<String> addCandidates(PathObjectHierarchy h, List<JsonObject> features, Region area) {
        Map<String, PathObject> existing = [:]
        List<PathObject> stale = []
        JsonObject areaPolygon = area?.toPolygon()
        for (PathObject o : h.getAnnotationObjects()) {
            String sid = o.getMetadata()[Keys.OBJECT_ID]
            if (sid == null) continue
            existing[sid] = o
            if (o.getMetadata()[Keys.REVIEW] == ReviewStatus.PENDING.wire && areaPolygon != null) {
                double[] c = GeoJson.centroid(snapshot(o).geometry)
                if (c != null && GeoJson.contains(areaPolygon, c[0], c[1])) stale << o
            }
        }
        List<PathObject> added = []
        List<String> ids = []
        for (JsonObject f : features) {
            String sid = f.get('id').asString
            PathObject old = existing[sid]
            if (old != null && !stale.contains(old)) continue
            PathObject o
            try {
                o = gson().fromJson(f, PathObject)
            } catch (RuntimeException e) {
                throw new LoupeException('E_QUPATH_IMPORT', "QuPath refused object ${sid}: ${e.message}", null, e)
            }
            o.setPathClass(reviewClass(ReviewStatus.PENDING))
            // Signature of the outline as QuPath stores it (it may move the ring's start vertex).
            o.getMetadata()[Keys.OUTLINE] = GeoJson.outlineSignature(snapshot(o).geometry)
            added << o
            ids << sid
        }
        if (!stale.isEmpty()) h.removeObjects(stale, true)
        if (!added.isEmpty()) h.addObjects(added)
        return ids
    }

    static void apply(PathObjectHierarchy h, PathObject o, Decision d) {
        o.getMetadata().putAll(d.metadata)
        o.setPathClass(reviewClass(d.status))
        h.fireObjectClassificationsChangedEvent(QuPathObjects, [o])
    }

    /** Pixels of the open image as PNG, for servers that cannot read the file themselves. */
    static PixelSource pixels(ImageServer<BufferedImage> server, int z, int t) {
        return { Region r, double ds ->
            RegionRequest req = RegionRequest.createInstance(server.getPath(), ds, r.x, r.y, r.width, r.height, z, t)
            BufferedImage img = server.readRegion(req)
            BufferedImage rgb = img
            if (img.type != BufferedImage.TYPE_INT_RGB && img.type != BufferedImage.TYPE_3BYTE_BGR) {
                rgb = new BufferedImage(img.width, img.height, BufferedImage.TYPE_INT_RGB)
                Graphics2D g = rgb.createGraphics()
                g.drawImage(img, 0, 0, null)
                g.dispose()
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream()
            ImageIO.write(rgb, 'png', out)
            return out.toByteArray()
        } as PixelSource
    }
}
