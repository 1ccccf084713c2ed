package org.burnedge.demo.logic;

import java.util.ArrayList;
import java.util.List;

/**
 * A small pretty-printing JSON writer (2-space indent). Plain Java, no Android imports.
 *
 * <pre>
 * String text = new JsonWriter().beginObject().name("runs").value(50).endObject().toString();
 * </pre>
 *
 * Non-finite doubles (NaN, +-Infinity) are not valid JSON and are written as {@code null}.
 * Non-ASCII characters are escaped as {@code \\uXXXX}, so the output is pure ASCII.
 */
public final class JsonWriter {
    private final StringBuilder out = new StringBuilder();
    /** One entry per open container: true = object. */
    private final List<Boolean> isObject = new ArrayList<Boolean>();
    /** One entry per open container: number of members written so far. */
    private final List<Integer> count = new ArrayList<Integer>();
    private boolean afterName;
    private boolean done;

    public JsonWriter beginObject() {
        beforeValue();
        out.append('{');
        isObject.add(Boolean.TRUE);
        count.add(0);
        return this;
    }

    public JsonWriter endObject() {
        return end(true, '}');
    }

    public JsonWriter beginArray() {
        beforeValue();
        out.append('[');
        isObject.add(Boolean.FALSE);
        count.add(0);
        return this;
    }

    public JsonWriter endArray() {
        return end(false, ']');
    }

    /** The next member's key; only inside an object. */
    public JsonWriter name(String key) {
        if (isObject.isEmpty() || !isObject.get(isObject.size() - 1) || afterName) {
            throw new IllegalStateException("name(\"" + key + "\") outside an object or twice in a row");
        }
        separator();
        quote(key);
        out.append(": ");
        afterName = true;
        return this;
    }

    public JsonWriter value(String v) {
        if (v == null) {
            return nullValue();
        }
        beforeValue();
        quote(v);
        return this;
    }

    public JsonWriter value(long v) {
        beforeValue();
        out.append(v);
        return this;
    }

    public JsonWriter value(double v) {
        if (Double.isNaN(v) || Double.isInfinite(v)) {
            return nullValue();
        }
        beforeValue();
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            out.append((long) v).append(".0");
        } else {
            out.append(Double.toString(v));
        }
        return this;
    }

    public JsonWriter value(boolean v) {
        beforeValue();
        out.append(v ? "true" : "false");
        return this;
    }

    public JsonWriter nullValue() {
        beforeValue();
        out.append("null");
        return this;
    }

    /** The finished document (with a trailing newline); fails if a container is still open. */
    @Override
    public String toString() {
        if (!isObject.isEmpty() || !done) {
            throw new IllegalStateException("JSON document not finished (" + isObject.size() + " open containers)");
        }
        return out.toString() + "\n";
    }

    // ------------------------------------------------------------------ internals

    private void beforeValue() {
        if (done) {
            throw new IllegalStateException("a JSON document holds one top-level value");
        }
        if (isObject.isEmpty()) {
            return; // top level
        }
        boolean inObject = isObject.get(isObject.size() - 1);
        if (inObject) {
            if (!afterName) {
                throw new IllegalStateException("a value inside an object needs name(...) first");
            }
            afterName = false;
        } else {
            separator();
        }
    }

    private void separator() {
        int top = count.size() - 1;
        if (count.get(top) > 0) {
            out.append(',');
        }
        count.set(top, count.get(top) + 1);
        newline(isObject.size());
    }

    private JsonWriter end(boolean object, char close) {
        if (isObject.isEmpty() || isObject.get(isObject.size() - 1) != object || afterName) {
            throw new IllegalStateException("unbalanced " + close);
        }
        int n = count.remove(count.size() - 1);
        isObject.remove(isObject.size() - 1);
        if (n > 0) {
            newline(isObject.size());
        }
        out.append(close);
        if (isObject.isEmpty()) {
            done = true;
        }
        return this;
    }

    private void newline(int depth) {
        out.append('\n');
        for (int k = 0; k < depth; k++) {
            out.append("  ");
        }
    }

    private void quote(String v) {
        out.append('"');
        for (int k = 0; k < v.length(); k++) {
            char c = v.charAt(k);
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                case '\b': out.append("\\b"); break;
                case '\f': out.append("\\f"); break;
                default:
                    if (c < 0x20 || c > 0x7e) {
                        out.append(String.format(java.util.Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
            }
        }
        out.append('"');
    }
}
