/*
 * Loupe: export the open image's review as files, without sending anything (for an offline record or
 * a server that is not reachable now). Writes, under <project>/loupe-corrections/:
 *   <image>.geojson        every Loupe object and drawn annotation, in QuPath's own GeoJSON
 *   <image>.corrections.json  the corrections.submit items Send corrections would send for the whole
 *                             image (accepted / rejected / edited / added; see the extension README)
 * Works with Run › Run for project too.
 */
import qupath.ext.loupe.core.CorrectionsSubmit
import qupath.ext.loupe.core.GeoJson
import qupath.ext.loupe.core.Json
import qupath.ext.loupe.core.Keys
import qupath.ext.loupe.core.Region
import qupath.ext.loupe.core.ReviewState
import qupath.ext.loupe.glue.QuPathObjects

def imageData = getCurrentImageData()
def server = imageData.getServer()
def name = getProjectEntry()?.getImageName() ?: new File(server.getPath()).name
def dir = new File(buildFilePath(PROJECT_BASE_DIR, 'loupe-corrections'))
dir.mkdirs()

def annotations = getAnnotationObjects()
exportObjectsToGeoJson(annotations, new File(dir, "${name}.geojson").path, 'FEATURE_COLLECTION')

def snapshots = annotations.collect { QuPathObjects.snapshot(it) }
def state = new ReviewState()
state.load(snapshots)
def region = new Region(0, 0, server.getWidth(), server.getHeight()).toPolygon()
def plan = state.plan(snapshots, [region], null)
def slide = snapshots.find { it.metadata[Keys.SLIDE] }?.metadata?.get(Keys.SLIDE) ?: 'unregistered'
def msg = new CorrectionsSubmit(slide: slide, reviewedRegions: [region], items: plan.items)
msg.requestId = "export-${System.currentTimeMillis()}"
def out = new File(dir, "${name}.corrections.json")
def tmp = new File(dir, "${name}.corrections.json.part")
tmp.setText(Json.write(msg.toJson()), 'UTF-8')
tmp.renameTo(out)
println "Loupe: ${plan.summary()} → ${out}"
