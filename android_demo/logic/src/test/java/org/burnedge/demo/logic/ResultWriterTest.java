package org.burnedge.demo.logic;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;
import org.junit.Test;

public class ResultWriterTest {

    @Test
    public void writesTheVersionedSchema() throws JSONException {
        ResultWriter.Device dev = new ResultWriter.Device("Google", "Pixel 6", "arm64-v8a", "14", 34, 8);
        BenchRequest req = BenchRequest.defaults();
        LatencyStats s = LatencyStats.fromMillis(new double[] {3, 1, 2});
        String text = new ResultWriter("org.burnedge.demo", "0.1.0", "lce-lite", dev, req)
                .add(new ResultWriter.Entry("model_lce.tflite", "lce",
                        ResultWriter.kernelLabel("lce", dev.abi, false), 1, 10, s, null))
                .add(new ResultWriter.Entry("model_float.tflite", "float",
                        ResultWriter.kernelLabel("float", dev.abi, true), 1, 10, null, "boom"))
                .toJson(0L);
        JSONObject o = new JSONObject(text);
        assertEquals("burn-edge/android-bench", o.get("format"));
        assertEquals(1, o.get("version"));
        assertEquals("ok", o.get("status"));
        assertEquals(JSONObject.NULL, o.get("error"));
        assertEquals("1970-01-01T00:00:00Z", o.get("created_utc"));
        assertEquals("Pixel 6", o.getJSONObject("device").get("model"));
        JSONArray results = o.getJSONArray("results");
        JSONObject lce = results.getJSONObject(0);
        assertEquals("lce-arm64-optimized", lce.get("kernel"));
        assertEquals(2.0, lce.getDouble("median_ms"), 1e-12);
        assertEquals(3, lce.get("runs"));
        assertEquals(JSONObject.NULL, lce.get("error"));
        JSONObject flt = results.getJSONObject(1);
        assertEquals("tflite-xnnpack", flt.get("kernel"));
        assertEquals(JSONObject.NULL, flt.get("median_ms"));
        assertEquals(0, flt.get("runs"));
        assertEquals("boom", flt.get("error"));
    }

    @Test
    public void aFailedRunHasStatusError() throws JSONException {
        ResultWriter.Device dev = new ResultWriter.Device("x", null, "x86_64", "13", 33, 2);
        JSONObject o = new JSONObject(
                new ResultWriter("p", "v", "tensorflow-lite", dev, null).fail("no metadata.json").toJson(0L));
        assertEquals("error", o.get("status"));
        assertEquals("no metadata.json", o.get("error"));
        assertEquals(JSONObject.NULL, o.get("request"));
        assertEquals(JSONObject.NULL, o.getJSONObject("device").get("model"));
        assertEquals(0, o.getJSONArray("results").length());
    }

    @Test
    public void nonFiniteLatenciesAreNull() throws JSONException {
        ResultWriter.Device dev = new ResultWriter.Device("x", "y", "x86_64", "13", 33, 2);
        LatencyStats s = LatencyStats.fromMillis(new double[] {1, Double.POSITIVE_INFINITY});
        JSONObject e = new JSONObject(new ResultWriter("p", "v", "r", dev, BenchRequest.defaults())
                .add(new ResultWriter.Entry("m", "float", "tflite-builtin", 1, 0, s, null)).toJson(0L))
                .getJSONArray("results").getJSONObject(0);
        assertEquals(JSONObject.NULL, e.get("max_ms"));
        assertEquals(1.0, e.getDouble("min_ms"), 0.0);
    }

    @Test
    public void textIsIndentedAndKeepsTheSchemaOrder() {
        ResultWriter.Device dev = new ResultWriter.Device("x", "y", "x86_64", "13", 33, 2);
        String text = new ResultWriter("p", "v", "r", dev, null).toJson(0L);
        assertTrue(text, text.startsWith("{\n  \"format\": "));
        int last = -1;
        for (String key : new String[] {"format", "version", "status", "error", "created_utc", "app", "device",
            "request", "results"}) {
            int at = text.indexOf("\n  \"" + key + "\": ");
            assertTrue(key + " out of order in " + text, at > last);
            last = at;
        }
    }

    @Test
    public void kernelLabels() {
        assertEquals("lce-arm64-optimized", ResultWriter.kernelLabel("lce", "arm64-v8a", true));
        assertEquals("lce-unoptimized-x86_64", ResultWriter.kernelLabel("lce", "x86_64", false));
        assertEquals("tflite-builtin", ResultWriter.kernelLabel("float", "arm64-v8a", false));
    }
}
