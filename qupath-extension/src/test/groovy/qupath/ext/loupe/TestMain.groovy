// Runs every compiled *Test class with JUnit 4 and ends with the plain line "N passed, N failed"
// (what CI reads); exit code 1 when anything failed. Skipped tests (assumptions) are counted apart.
package qupath.ext.loupe

import groovy.transform.CompileStatic
import org.junit.runner.Description
import org.junit.runner.JUnitCore
import org.junit.runner.Result
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener

import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths

@CompileStatic
class TestMain {
    static void main(String[] args) {
        Path root = Paths.get(args[0])
        List<Class<?>> classes = []
        Files.walk(root).filter { Path p -> p.fileName.toString().endsWith('Test.class') && !p.fileName.toString().contains('$') }.sorted().forEach { Path p ->
            String name = root.relativize(p).toString().replace('/', '.').replaceAll(/\.class$/, '')
            classes << Class.forName(name)
        }
        JUnitCore core = new JUnitCore()
        int skipped = 0
        long t0 = System.nanoTime()
        core.addListener(new RunListener() {
            @Override void testFinished(Description d) { }
            @Override void testFailure(Failure f) {
                System.out.println("FAIL ${f.description.displayName}: ${f.message}")
                System.out.println(f.trace.readLines().take(12).join('\n'))
            }
            @Override void testAssumptionFailure(Failure f) {
                skipped++
                System.out.println("SKIP ${f.description.displayName}: ${f.message}")
            }
        })
        Result r = core.run(classes as Class[])
        int failed = r.failureCount
        int passed = r.runCount - failed - skipped
        System.out.println("${classes.size()} test classes, ${skipped} skipped, ${(System.nanoTime() - t0) / 1_000_000_000d} s")
        System.out.println("${passed} passed, ${failed} failed")
        System.exit(failed == 0 && r.runCount > 0 ? 0 : 1)
    }
}
