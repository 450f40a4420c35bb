#!/usr/bin/env bash
# Builds and tests the Loupe QuPath extension without QuPath or Gradle (CI and this machine):
# Groovy 4.0.26 (the version QuPath 0.6 bundles) from the npm package npm-groovy-lint, Gson and
# JUnit 4 from Debian (libgoogle-gson-java, junit4), JavaFX API jars from Debian (libopenjfx-java),
# JDK 17 (Groovy 4 cannot run on newer JDKs here, and 17 bytecode loads in QuPath 0.5 and 0.6).
# 1. compile the compile-only QuPath stand-ins (src/compileOnly-stubs; never packaged)
# 2. compile the protocol core (no QuPath imports), then the QuPath glue against the stand-ins
# 3. package build/ci/loupe-qupath-extension.jar; compile and run the JUnit 4 tests; the last line is "N passed, N failed"; exit 1 on failure.
# Environment: LOUPE_JAVA17_HOME, LOUPE_GROOVY_CACHE, LOUPE_QUPATH_BUILD (output dir),
# LOUPE_TEST_SERVER (a running `loupe serve` URL for the integration tests; otherwise they start one).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JAVA_HOME="${LOUPE_JAVA17_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
JAVA="$JAVA_HOME/bin/java"
JAVAC="$JAVA_HOME/bin/javac"
GROOVY_VERSION=4.0.26
CACHE="${LOUPE_GROOVY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/loupe/groovy-$GROOVY_VERSION}"
OUT="${LOUPE_QUPATH_BUILD:-$HERE/build/ci}"

need() { [ -e "$1" ] || { echo "missing $1: $2" >&2; echo "0 passed, 1 failed"; exit 1; }; }
need "$JAVAC" "install openjdk-17-jdk-headless (or set LOUPE_JAVA17_HOME)"
need /usr/share/java/gson.jar "apt-get install libgoogle-gson-java"
need /usr/share/java/junit4.jar "apt-get install junit4"
need /usr/share/java/javafx-controls.jar "apt-get install libopenjfx-java"

GROOVY_JAR="$CACHE/groovy-$GROOVY_VERSION.jar"
if [ ! -f "$GROOVY_JAR" ]; then
  echo "fetching Groovy $GROOVY_VERSION jars (npm pack npm-groovy-lint@18.0.0) into $CACHE"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack npm-groovy-lint@18.0.0 --silent >/dev/null && tar xzf npm-groovy-lint-18.0.0.tgz "package/lib/java/groovy/lib/groovy-$GROOVY_VERSION.jar")
  mkdir -p "$CACHE"
  mv "$tmp/package/lib/java/groovy/lib/groovy-$GROOVY_VERSION.jar" "$GROOVY_JAR.part"
  mv "$GROOVY_JAR.part" "$GROOVY_JAR"
fi

FX="/usr/share/java/javafx-base.jar:/usr/share/java/javafx-graphics.jar:/usr/share/java/javafx-controls.jar:/usr/share/java/javafx-swing.jar"
GSON=/usr/share/java/gson.jar
JUNIT="/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar"
rm -rf "$OUT"
mkdir -p "$OUT/stubs" "$OUT/core" "$OUT/glue" "$OUT/test"

groovyc() { # groovyc CLASSPATH DEST FILES...
  local cp="$1" dest="$2"; shift 2
  echo "  groovyc → ${dest##*/} ($# files, ${SECONDS}s)"
  # C1 only + serial GC: a compiler run is short, so JIT warm-up would cost more than it saves.
  "$JAVA" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dgroovy.target.bytecode=17 -cp "$GROOVY_JAR:$cp" org.codehaus.groovy.tools.FileSystemCompiler -d "$dest" "$@"
}

# A build failure still ends with the summary line CI reads.
trap 'echo "build failed (see above)"; echo "0 passed, 1 failed"' ERR
echo "compiling QuPath stand-ins, core, glue, tests with $("$JAVA" -version 2>&1 | head -1)"
mapfile -t STUBS < <(find "$HERE/src/compileOnly-stubs" -name '*.java' | sort)
[ ${#STUBS[@]} -eq 0 ] || "$JAVAC" --release 17 -nowarn -cp "$FX:$GSON" -d "$OUT/stubs" "${STUBS[@]}"
mapfile -t CORE < <(find "$HERE/src/main/groovy/qupath/ext/loupe/core" -name '*.groovy' | sort)
groovyc "$GSON" "$OUT/core" "${CORE[@]}"
# The glue (against the stand-ins), the tests and the scripts in scripts/ in one compiler run: a JVM
# start is most of the cost. The scripts run dynamically inside QuPath, so compiling them catches syntax
# errors and wrong uses of our classes, not of QuPath's script methods.
mapfile -t GLUE < <(find "$HERE/src/main/groovy/qupath/ext/loupe/glue" -name '*.groovy' | sort)
mapfile -t TESTS < <(find "$HERE/src/test/groovy" -name '*.groovy' | sort)
groovyc "$GSON:$JUNIT:$OUT/core:$OUT/stubs:$FX" "$OUT/test" "${GLUE[@]}" "${TESTS[@]}" "$HERE"/scripts/*.groovy
# The extension jar (core + glue + resources; no stand-ins, no Groovy: QuPath provides it). It is the
# same content build.gradle.kts packages, for machines without Gradle or internet (README.md).
(cd "$OUT/test" && find qupath/ext/loupe/glue -name '*.class' -exec install -D -m 644 {} "$OUT/glue/{}" \;)
"$JAVA_HOME/bin/jar" --create --file "$OUT/loupe-qupath-extension.jar" -C "$OUT/core" . -C "$OUT/glue" . -C "$HERE/src/main/resources" .

# The jar QuPath loads must be Java 17 bytecode (class major version 61).
major="$("$JAVA_HOME/bin/javap" -v -cp "$OUT/core" qupath.ext.loupe.core.WsSession | sed -n 's/.*major version: //p')"
[ "$major" = "61" ] || { echo "core compiled to class major $major, expected 61 (Java 17)" >&2; echo "0 passed, 1 failed"; exit 1; }

trap - ERR
export LOUPE_REPO_ROOT="$(cd "$HERE/.." && pwd)"
export LOUPE_EXT_DIR="$HERE"
export LOUPE_QUPATH_BUILD="$OUT"
cd "$HERE"
# Stand-ins are on the test class path only because the glue tests touch glue classes; core tests do not need them.
"$JAVA" -XX:TieredStopAtLevel=1 -cp "$OUT/test:$OUT/core:$OUT/stubs:$FX:$GROOVY_JAR:$GSON:$JUNIT" qupath.ext.loupe.TestMain "$OUT/test"
