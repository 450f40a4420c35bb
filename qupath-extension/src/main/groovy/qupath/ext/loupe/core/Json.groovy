// JSON helpers for the protocol core, on Gson (QuPath bundles Gson but not groovy-json). Reading
// helpers name the JSON path that is wrong, as the server's schemas do, so a message mismatch between
// extension and server versions reads as "candidates.objects.features[3].id: expected a string".
package qupath.ext.loupe.core

import com.google.gson.Gson
import com.google.gson.GsonBuilder
import com.google.gson.JsonArray
import com.google.gson.JsonElement
import com.google.gson.JsonNull
import com.google.gson.JsonObject
import com.google.gson.JsonParser
import com.google.gson.JsonPrimitive
import groovy.transform.CompileStatic

@CompileStatic
final class Json {
    private Json() {}

    /** Compact, no HTML escaping (the server reads raw UTF-8), nulls kept where we put them. */
    static final Gson GSON = new GsonBuilder().disableHtmlEscaping().serializeNulls().create()

    static String write(JsonElement e) { GSON.toJson(e) }

    static JsonObject parseObject(String text) {
        JsonElement e
        try {
            e = JsonParser.parseString(text)
        } catch (Exception ex) {
            throw new LoupeException('E_PROTOCOL_MALFORMED_JSON', "frame is not valid JSON: ${ex.message}", null, ex)
        }
        if (!e.isJsonObject()) throw bad('', 'a JSON object', e)
        return e.asJsonObject
    }

    static LoupeException bad(String path, String expected, JsonElement got) {
        String g = got == null || got.isJsonNull() ? (got == null ? 'nothing' : 'null') : got.isJsonArray() ? 'an array' : got.isJsonObject() ? 'an object' : got.toString()
        if (g.length() > 60) g = g.substring(0, 60) + '…'
        return new LoupeException('E_PROTOCOL_BAD_MESSAGE', "${path ?: 'message'}: expected ${expected}, got ${g}")
    }

    private static String at(String path, String key) { path ? "${path}.${key}" : key }

    static JsonElement get(JsonObject o, String key) {
        JsonElement e = o.get(key)
        return e == null || e.isJsonNull() ? null : e
    }

    static boolean isString(JsonElement e) { e != null && e.isJsonPrimitive() && e.asJsonPrimitive.isString() }
    static boolean isNumber(JsonElement e) { e != null && e.isJsonPrimitive() && e.asJsonPrimitive.isNumber() }
    static boolean isBoolean(JsonElement e) { e != null && e.isJsonPrimitive() && e.asJsonPrimitive.isBoolean() }

    static String str(JsonObject o, String key, String path) {
        JsonElement e = o.get(key)
        if (!isString(e)) throw bad(at(path, key), 'a string', e)
        return e.asString
    }

    /** Absent or null → null; anything else must be a string. */
    static String strOrNull(JsonObject o, String key, String path) {
        JsonElement e = get(o, key)
        if (e == null) return null
        if (!isString(e)) throw bad(at(path, key), 'a string or null', e)
        return e.asString
    }

    static double num(JsonObject o, String key, String path) {
        JsonElement e = o.get(key)
        if (!isNumber(e)) throw bad(at(path, key), 'a number', e)
        double d = e.asDouble
        if (Double.isNaN(d) || Double.isInfinite(d)) throw bad(at(path, key), 'a finite number', e)
        return d
    }

    static Double numOrNull(JsonObject o, String key, String path) {
        JsonElement e = get(o, key)
        return e == null ? null : (Double) num(o, key, path)
    }

    static int integer(JsonObject o, String key, String path) {
        double d = num(o, key, path)
        if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) throw bad(at(path, key), 'an integer', o.get(key))
        return (int) d
    }

    static long lng(JsonObject o, String key, String path) {
        double d = num(o, key, path)
        if (d != Math.rint(d)) throw bad(at(path, key), 'an integer', o.get(key))
        return (long) d
    }

    static boolean bool(JsonObject o, String key, String path) {
        JsonElement e = o.get(key)
        if (!isBoolean(e)) throw bad(at(path, key), 'true or false', e)
        return e.asBoolean
    }

    static JsonObject obj(JsonObject o, String key, String path) {
        JsonElement e = o.get(key)
        if (e == null || !e.isJsonObject()) throw bad(at(path, key), 'an object', e)
        return e.asJsonObject
    }

    static JsonArray arr(JsonObject o, String key, String path) {
        JsonElement e = o.get(key)
        if (e == null || !e.isJsonArray()) throw bad(at(path, key), 'an array', e)
        return e.asJsonArray
    }

    static List<String> strings(JsonObject o, String key, String path) {
        JsonArray a = arr(o, key, path)
        List<String> out = []
        for (int i = 0; i < a.size(); i++) {
            if (!isString(a.get(i))) throw bad("${at(path, key)}[${i}]", 'a string', a.get(i))
            out << a.get(i).asString
        }
        return out
    }

    /** A map of finite numbers (metrics, stats, measurements). */
    static Map<String, Double> numbers(JsonObject o, String key, String path) {
        JsonObject m = obj(o, key, path)
        Map<String, Double> out = new LinkedHashMap<>()
        for (String k : m.keySet()) out[k] = num(m, k, at(path, key))
        return out
    }

    static JsonPrimitive p(String s) { new JsonPrimitive(s) }
    static JsonPrimitive p(Number n) { new JsonPrimitive(n) }
    static JsonPrimitive p(boolean b) { new JsonPrimitive(b) }
    static JsonElement nullable(String s) { s == null ? JsonNull.INSTANCE : new JsonPrimitive(s) }

    static JsonArray strArray(Collection<String> items) {
        JsonArray a = new JsonArray()
        for (String s : items) a.add(s)
        return a
    }

    /** Deep copy through Gson's own tree copy. */
    static JsonObject copy(JsonObject o) { o.deepCopy() }
}
