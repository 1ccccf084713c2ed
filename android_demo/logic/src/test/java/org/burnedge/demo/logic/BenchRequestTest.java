package org.burnedge.demo.logic;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import org.junit.Test;

public class BenchRequestTest {

    @Test
    public void defaultsWhenNoExtras() {
        BenchRequest r = BenchRequest.fromExtras(Collections.<String, Object>emptyMap());
        assertEquals("both", r.model);
        assertEquals(1, r.threads);
        assertEquals(50, r.runs);
        assertEquals(10, r.warmup);
        assertEquals("bench_result.json", r.out);
        assertTrue(r.xnnpack);
        assertEquals(Arrays.asList("lce", "float"), r.backends());
    }

    @Test
    public void intExtrasAndStringExtrasBothWork() {
        Map<String, Object> e = new HashMap<String, Object>();
        e.put("model", "float");
        e.put("threads", 4);
        e.put("runs", "20");
        e.put("warmup", 0L);
        e.put("xnnpack", "false");
        e.put("out", "r1.json");
        BenchRequest r = BenchRequest.fromExtras(e);
        assertEquals(4, r.threads);
        assertEquals(20, r.runs);
        assertEquals(0, r.warmup);
        assertFalse(r.xnnpack);
        assertEquals("r1.json", r.out);
        assertEquals(Arrays.asList("float"), r.backends());
    }

    private static void assertRejected(String key, Object value, String messagePart) {
        Map<String, Object> e = new HashMap<String, Object>();
        e.put(key, value);
        try {
            BenchRequest.fromExtras(e);
            fail("accepted " + key + "=" + value);
        } catch (IllegalArgumentException ex) {
            assertTrue(ex.getMessage() + " should contain " + messagePart, ex.getMessage().contains(messagePart));
        }
    }

    @Test
    public void badOptionsAreRejectedWithAClearMessage() {
        assertRejected("model", "int8", "model must be one of [lce, float, both]");
        assertRejected("threads", 0, "threads >= 1");
        assertRejected("runs", "many", "runs must be an integer");
        assertRejected("out", "../x.json", "plain file name");
        assertRejected("xnnpack", "maybe", "true or false");
        assertRejected("thread", 4, "unknown option \"thread\"");
    }
}
