// The Loupe extension jar, compiled against the real QuPath jars (where the compile-only stand-ins in
// src/compileOnly-stubs are not used). `./gradlew shadowJar` → build/libs/qupath-extension-loupe-*.jar,
// to drag onto QuPath 0.5.x or 0.6.x. Tests are not run here: run-tests.sh (npm test) runs them,
// because they need Node and the Loupe server from this repository.
plugins {
    groovy
    id("com.gradleup.shadow") version "8.3.5"
    id("qupath-conventions")
}

qupathExtension {
    name = "qupath-extension-loupe"
    group = "io.github.loupe"
    version = "0.1.0"
    description = "Segment glomeruli with a Loupe server, review the least confident objects, send corrections and retrain."
    automaticModule = "io.github.loupe.extension"
}

dependencies {
    // Everything below is provided by QuPath at run time (Gson, Groovy, JavaFX, qupath-fxtras):
    // `shadow` keeps them out of the jar. java.net.http is part of QuPath's Java runtime.
    shadow(libs.bundles.qupath)
    shadow(libs.bundles.logging)
    shadow(libs.qupath.fxtras)
    shadow(libs.bundles.groovy)
}

// One jar for QuPath 0.5 (Java 17) and 0.6 (Java 21): emit Java 17 bytecode whatever the toolchain.
tasks.withType<GroovyCompile>().configureEach {
    sourceCompatibility = "17"
    targetCompatibility = "17"
}
tasks.withType<JavaCompile>().configureEach {
    options.release.set(17)
}

// The JUnit tests live with the repository's test runner (run-tests.sh), not in this build.
sourceSets {
    test {
        groovy.setSrcDirs(emptyList<String>())
        java.setSrcDirs(emptyList<String>())
    }
}
