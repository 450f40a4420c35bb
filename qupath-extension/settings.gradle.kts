// Gradle build of the Loupe QuPath extension, for machines with internet access (README.md).
// Follows qupath/qupath-extension-template: the QuPath settings plugin brings QuPath's version catalog
// (`libs`). Build against another QuPath with -PqupathVersion=0.5.1.
pluginManagement {
    repositories {
        gradlePluginPortal()
        maven {
            url = uri("https://maven.scijava.org/content/repositories/releases")
        }
    }
}

rootProject.name = "qupath-extension-loupe"

qupath {
    version = providers.gradleProperty("qupathVersion").getOrElse("0.6.0")
}

plugins {
    id("io.github.qupath.qupath-extension-settings") version "0.2.1"
}
