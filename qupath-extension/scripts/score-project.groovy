/*
 * Loupe: score every image of a project. Open this script in Automate › Script editor and choose
 * Run › Run for project: QuPath opens each image in turn, runs this script, and saves the image's
 * data when it finishes (so an interrupted run keeps every image already scored). Images already
 * holding Loupe objects of the server's active model are skipped, so a second run resumes.
 * (Extensions › Loupe › Batch score project does the same from the menu, with a progress window.)
 */
import qupath.ext.loupe.core.Keys
import qupath.ext.loupe.core.LoupeClient
import qupath.ext.loupe.core.ProgressListener
import qupath.ext.loupe.glue.BatchScorer
import qupath.ext.loupe.glue.LoupePrefs

def imageData = getCurrentImageData()
def entry = getProjectEntry()
def client = new LoupeClient(LoupePrefs.serverUrl.get(), LoupePrefs.token.get() ?: null)
try {
    def welcome = client.connect()
    def done = getAnnotationObjects().any { it.getMetadata()[Keys.MODEL_VERSION] == welcome.activeModel }
    if (done) {
        println "Loupe: ${entry.getImageName()} already scored with ${welcome.activeModel}; skipped"
        return
    }
    int n = BatchScorer.scoreImage(client, imageData, entry.getURIs(), entry.getImageName(),
            LoupePrefs.downsample.get(), LoupePrefs.pixelMode.get(), { String msg, double f -> println "Loupe: ${msg}" } as ProgressListener)
    fireHierarchyUpdate()
    println "Loupe: ${entry.getImageName()}: ${n} objects"
} finally {
    client.close()
}
