package org.burnedge.demo.logic;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;

import java.util.List;
import java.util.Map;
import org.junit.Test;

public class ResultWriterTest {

    @SuppressWarnings("unchecked")
    @Test
    public void writesTheVersionedSchema() {
        ResultWriter.Device dev = new ResultWriter.Device("Google", "Pixel 6", "arm64-v8a", "14", 34, 8);
        BenchRequest req = BenchRequest.defaults();
        LatencyStats s = LatencyStats.fromMillis(new double[] {3, 1, 2});
        String text = new ResultWriter("org.burnedge.demo", "0.1.0", "lce-lite", dev, req)
                .add(new ResultWriter.Entry("model_lce.tflite", "lce",
                        ResultWriter.kernelLabel("lce", dev.abi, false), 1, 10, s, null))
                .add(new ResultWriter.Entry("model_float.tflite", "float",
                        ResultWriter.kernelLabel("float", dev.abi, true), 1, 10, null, "boom"))
                .toJson(0L);
        Map<String, Object> o = Json.parseObject(text);
        assertEquals("burn-edge/android-bench", o.get("format"));
        assertEquals(1.0, (Double) o.get("version"), 0.0);
        assertEquals("ok", o.get("status"));
        assertEquals("1970-01-01T00:00:00Z", o.get("created_utc"));
        assertEquals("Pixel 6", Json.getString(Json.getObject(o, "device"), "model"));
        List<Object> results = Json.getArray(o, "results");
        Map<String, Object> lce = (Map<String, Object>) results.get(0);
        assertEquals("lce-arm64-optimized", lce.get("kernel"));
        assertEquals(2.0, (Double) lce.get("median_ms"), 1e-12);
        assertEquals(3.0, (Double) lce.get("runs"), 0.0);
        assertNull(lce.get("error"));
        Map<String, Object> flt = (Map<String, Object>) results.get(1);
        assertEquals("tflite-xnnpack", flt.get("kernel"));
        assertNull(flt.get("median_ms"));
        assertEquals("boom", flt.get("error"));
    }

    @Test
    public void aFailedRunHasStatusError() {
        ResultWriter.Device dev = new ResultWriter.Device("x", "y", "x86_64", "13", 33, 2);
        Map<String, Object> o = Json.parseObject(
                new ResultWriter("p", "v", "tensorflow-lite", dev, null).fail("no metadata.json").toJson(0L));
        assertEquals("error", o.get("status"));
        assertEquals("no metadata.json", o.get("error"));
        assertNull(o.get("request"));
        assertEquals(0, Json.getArray(o, "results").size());
    }

    @Test
    public void kernelLabels() {
        assertEquals("lce-arm64-optimized", ResultWriter.kernelLabel("lce", "arm64-v8a", true));
        assertEquals("lce-unoptimized-x86_64", ResultWriter.kernelLabel("lce", "x86_64", false));
        assertEquals("tflite-builtin", ResultWriter.kernelLabel("float", "arm64-v8a", false));
    }
}
