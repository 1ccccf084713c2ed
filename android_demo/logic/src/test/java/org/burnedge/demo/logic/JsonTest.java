package org.burnedge.demo.logic;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {

    @Test
    public void parsesAllValueKinds() {
        Map<String, Object> o = Json.parseObject(
                "{\"s\": \"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\", \"n\": -1.5e2, \"i\": 0, \"t\": true, \"f\": false,"
                        + " \"z\": null, \"a\": [1, [], {}], \"o\": {\"k\": \"v\"}}");
        assertEquals("a\"b\\c\n\u00e9\ud83d\ude00", o.get("s"));
        assertEquals(-150.0, (Double) o.get("n"), 0.0);
        assertEquals(0.0, (Double) o.get("i"), 0.0);
        assertEquals(Boolean.TRUE, o.get("t"));
        assertEquals(Boolean.FALSE, o.get("f"));
        assertTrue(o.containsKey("z"));
        assertNull(o.get("z"));
        assertEquals(3, ((List<?>) o.get("a")).size());
        assertEquals("v", Json.getString(Json.getObject(o, "o"), "k"));
        assertEquals(Arrays.asList("s", "n", "i", "t", "f", "z", "a", "o"), Arrays.asList(o.keySet().toArray()));
    }

    @Test
    public void rejectsMalformedText() {
        String[] bad = {"", "{", "{\"a\" 1}", "[1,]", "{\"a\": 01}", "[1] x", "\"abc", "{'a': 1}", "[1.]", "nul",
            "[\"\\x\"]", "-"};
        for (String text : bad) {
            try {
                Json.parse(text);
                fail("accepted malformed JSON: " + text);
            } catch (Json.JsonException expected) {
                assertTrue(expected.getMessage(), expected.getMessage().startsWith("bad JSON at line"));
            }
        }
    }

    @Test
    public void errorsNameTheKeyAndType() {
        Map<String, Object> o = Json.parseObject("{\"h\": 32.5, \"s\": 3}");
        try {
            Json.getInt(o, "h");
            fail();
        } catch (Json.JsonException e) {
            assertEquals("\"h\" must be an integer, got 32.5", e.getMessage());
        }
        try {
            Json.getString(o, "s");
            fail();
        } catch (Json.JsonException e) {
            assertEquals("\"s\" must be a string, got number", e.getMessage());
        }
        try {
            Json.require(o, "missing");
            fail();
        } catch (Json.JsonException e) {
            assertEquals("missing key \"missing\"", e.getMessage());
        }
    }

    @Test
    public void writerOutputParsesBackToTheSameValues() {
        String text = new JsonWriter().beginObject()
                .name("s").value("q\"\\\n\t\u00e9\u0001")
                .name("d").value(1.0e-5)
                .name("whole").value(12.0)
                .name("l").value(-7L)
                .name("nan").value(Double.NaN)
                .name("b").value(true)
                .name("none").value((String) null)
                .name("arr").beginArray().value(1).beginObject().endObject().beginArray().endArray().endArray()
                .endObject().toString();
        for (char c : text.toCharArray()) {
            assertTrue("non-ASCII output", c < 0x80);
        }
        Map<String, Object> o = Json.parseObject(text);
        assertEquals("q\"\\\n\t\u00e9\u0001", o.get("s"));
        assertEquals(1.0e-5, (Double) o.get("d"), 0.0);
        assertEquals(12.0, (Double) o.get("whole"), 0.0);
        assertEquals(-7.0, (Double) o.get("l"), 0.0);
        assertNull(o.get("nan"));
        assertEquals(Boolean.TRUE, o.get("b"));
        assertNull(o.get("none"));
        assertEquals(3, ((List<?>) o.get("arr")).size());
    }

    @Test(expected = IllegalStateException.class)
    public void writerRejectsValueWithoutName() {
        new JsonWriter().beginObject().value(1);
    }

    @Test(expected = IllegalStateException.class)
    public void writerRejectsUnfinishedDocument() {
        new JsonWriter().beginObject().name("a").beginArray().toString();
    }
}
