/*
 * Loupe: score the open image with the Loupe server (QuPath: Automate › Script editor › Run).
 * Adds the predicted objects as `Loupe candidate` annotations (energy, probability, area as measurements
 * and as loupe.* metadata). Uses the server URL, token, downsample and pixel mode saved by
 * Extensions › Loupe › Connect… and the loupe.* preferences. Needs the Loupe extension jar installed.
 */
import qupath.ext.loupe.glue.LoupeScripting

def imageData = getCurrentImageData()
if (imageData == null) throw new IllegalStateException('Open an image first')
int n = LoupeScripting.scoreImage(imageData)
fireHierarchyUpdate()
println "Loupe: ${n} objects added"
