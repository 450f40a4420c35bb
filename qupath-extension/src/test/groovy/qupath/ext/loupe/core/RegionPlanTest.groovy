// Batch scoring's tiling: regions stay within the server's pixel limit, cover the image, overlap, and
// every point is owned by exactly one region (so an object on a border is kept once).
package qupath.ext.loupe.core

import groovy.transform.CompileStatic
import org.junit.Test

import static org.junit.Assert.*

@CompileStatic
class RegionPlanTest {
    @Test void regionsRespectTheLimitAndEveryPointHasOneOwner() {
        int w = 10_000, h = 7_001
        double ds = 2
        long max = 1024L * 1024
        List<PlannedRegion> plan = RegionPlan.plan(w, h, ds, max, 256)
        for (PlannedRegion p : plan) {
            assertTrue((p.region.width / ds) * (p.region.height / ds) <= max)
            assertNotNull(p.region.clip(w, h))
            assertEquals(p.region, p.region.clip(w, h))
        }
        Random rnd = new Random(7)
        for (int k = 0; k < 2000; k++) {
            double[] pt = [rnd.nextDouble() * w, rnd.nextDouble() * h] as double[]
            List<PlannedRegion> owners = plan.findAll { it.owns(pt) }
            assertEquals(1, owners.size())
            Region r = owners[0].region
            assertTrue('owner contains the point', pt[0] >= r.x && pt[0] < r.x + r.width && pt[1] >= r.y && pt[1] < r.y + r.height)
        }
    }

    @Test void aSmallImageIsOneRegion() {
        List<PlannedRegion> plan = RegionPlan.plan(300, 200, 1, 4096L * 4096, 128)
        assertEquals(1, plan.size())
        assertEquals(new Region(0, 0, 300, 200), plan[0].region)
    }

    @Test void viewerBoundsBecomeAnIntegerRegionClippedToTheImage() {
        Region r = Region.enclosing(-10.5, 20.2, 500.1, 90.9).clip(400, 400)
        assertEquals(new Region(0, 20, 400, 71), r)
        assertNull(new Region(500, 500, 10, 10).clip(400, 400))
    }
}
