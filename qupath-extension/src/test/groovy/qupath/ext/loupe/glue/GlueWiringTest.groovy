// What QuPath needs to load the extension, checked without QuPath: the service file names a class that
// implements QuPathExtension, every UI string the menu uses exists, and the jar-to-be holds no
// compile-only stand-in. (The glue's calls into QuPath are checked by compiling it @CompileStatic
// against src/compileOnly-stubs; running them needs QuPath itself.)
package qupath.ext.loupe.glue

import groovy.transform.CompileStatic
import org.junit.Test
import qupath.lib.gui.extensions.QuPathExtension

import static org.junit.Assert.*

@CompileStatic
class GlueWiringTest {
    static File ext = new File(System.getenv('LOUPE_EXT_DIR') ?: '.')

    @Test void theServiceFileNamesTheExtensionClass() {
        File services = new File(ext, 'src/main/resources/META-INF/services/qupath.lib.gui.extensions.QuPathExtension')
        List<String> names = services.readLines('UTF-8').findAll { String l -> l.trim() && !l.startsWith('#') }
        assertEquals(['qupath.ext.loupe.glue.LoupeExtension'], names)
        assertTrue(QuPathExtension.isAssignableFrom(Class.forName(names[0], false, getClass().classLoader)))
    }

    @Test void everyUiStringTheGlueUsesExists() {
        Properties p = new Properties()
        new File(ext, 'src/main/resources/qupath/ext/loupe/strings.properties').withReader('UTF-8') { Reader r -> p.load(r) }
        String src = new File(ext, 'src/main/groovy/qupath/ext/loupe/glue/LoupeExtension.groovy').getText('UTF-8')
        List<String> keys = (src =~ /item\('([A-Za-z]+)'/).collect { Object m -> "command.${((List) m)[1]}".toString() } + ['name', 'description', 'menu']
        assertTrue(keys.size() >= 10)
        for (String k : keys) assertTrue("strings.properties lacks ${k}".toString(), p.containsKey(k))
    }

    @Test void theJarHoldsCoreGlueAndResourcesButNoStandIns() {
        File jar = new File(System.getenv('LOUPE_QUPATH_BUILD') ?: new File(ext, 'build/ci').path, 'loupe-qupath-extension.jar')
        List<String> entries = new java.util.zip.ZipFile(jar).withCloseable { java.util.zip.ZipFile z -> z.entries().toList()*.name }
        assertTrue(entries.contains('qupath/ext/loupe/glue/LoupeExtension.class'))
        assertTrue(entries.contains('qupath/ext/loupe/core/WsSession.class'))
        assertTrue(entries.contains('META-INF/services/qupath.lib.gui.extensions.QuPathExtension'))
        assertFalse(entries.any { String e -> e.startsWith('qupath/lib/') || e.startsWith('qupath/fx/') })
    }
}
