// Splits a whole image into predict.region requests that respect the server's maxRegionPixels, with
// an overlap so an object cut by one region's border is whole in its neighbour. Each region owns a
// core; the cores tile the image exactly, and an object is kept only by the region whose core holds
// its centre — so every object is kept once. Pure (level-0 pixels throughout).
package qupath.ext.loupe.core

import groovy.transform.CompileStatic

@CompileStatic
class PlannedRegion {
    /** What is sent (includes the overlap). */
    Region region
    /** [x0, y0, x1, y1): the part this region owns. */
    double[] core

    boolean owns(double[] point) { point != null && point[0] >= core[0] && point[0] < core[2] && point[1] >= core[1] && point[1] < core[3] }
}

@CompileStatic
final class RegionPlan {
    private RegionPlan() {}

    /**
     * @param maxRegionPixels the server's limit on (width/downsample)·(height/downsample)
     * @param overlapPx level-0 overlap between neighbours; make it larger than the biggest object
     */
    static List<PlannedRegion> plan(int imageWidth, int imageHeight, double downsample, long maxRegionPixels, int overlapPx) {
        if (imageWidth < 1 || imageHeight < 1) throw new LoupeException('E_REGION_EMPTY', "image size ${imageWidth}×${imageHeight} has no pixels")
        int sideOut = (int) Math.floor(Math.sqrt((double) maxRegionPixels))
        int side = (int) Math.floor(sideOut * downsample)
        if (side <= 2 * overlapPx) throw new LoupeException('E_CLIENT_BAD_REQUEST', "regions of ${side} px cannot overlap by ${overlapPx} px: lower the overlap or raise the downsample")
        List<int[]> xs = spans(imageWidth, side, overlapPx), ys = spans(imageHeight, side, overlapPx)
        List<PlannedRegion> out = []
        for (int j = 0; j < ys.size(); j++) for (int i = 0; i < xs.size(); i++) {
            int[] sx = xs[i], sy = ys[j]
            double cx0 = i == 0 ? Double.NEGATIVE_INFINITY : sx[0] + overlapPx / 2d
            double cx1 = i == xs.size() - 1 ? Double.POSITIVE_INFINITY : xs[i + 1][0] + overlapPx / 2d
            double cy0 = j == 0 ? Double.NEGATIVE_INFINITY : sy[0] + overlapPx / 2d
            double cy1 = j == ys.size() - 1 ? Double.POSITIVE_INFINITY : ys[j + 1][0] + overlapPx / 2d
            out << new PlannedRegion(region: new Region(sx[0], sy[0], sx[1], sy[1]), core: [cx0, cy0, cx1, cy1] as double[])
        }
        return out
    }

    /** The same plan for a sub-area of the image (e.g. the viewer's region), in image coordinates. */
    static List<PlannedRegion> plan(Region area, double downsample, long maxRegionPixels, int overlapPx) {
        List<PlannedRegion> local = plan(area.width, area.height, downsample, maxRegionPixels, overlapPx)
        for (PlannedRegion p : local) {
            p.region = new Region(p.region.x + area.x, p.region.y + area.y, p.region.width, p.region.height)
            p.core = [p.core[0] + area.x, p.core[1] + area.y, p.core[2] + area.x, p.core[3] + area.y] as double[]
        }
        return local
    }

    /** [start, length] spans of at most `side` covering [0, size), neighbours overlapping by `overlap`. */
    private static List<int[]> spans(int size, int side, int overlap) {
        List<int[]> out = []
        if (size <= side) { out << ([0, size] as int[]); return out }
        int stride = side - overlap
        int n = (int) Math.ceil((size - overlap) / (double) stride)
        for (int k = 0; k < n; k++) {
            int start = Math.min(k * stride, size - side)
            out << ([start, Math.min(side, size - start)] as int[])
        }
        return out
    }
}
