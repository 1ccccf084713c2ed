package org.burnedge.demo.logic;

import static org.junit.Assert.assertEquals;

import java.util.Arrays;
import java.util.List;
import org.junit.Test;

public class ClassificationTest {

    @Test
    public void labelsFileParsing() {
        assertEquals(Arrays.asList("a", "b c", ""), Classification.parseLabels("a\r\nb c\n\n"));
        assertEquals(Arrays.asList("x", "y"), Classification.parseLabels("x\ny"));
    }

    @Test
    public void softmaxIsStableAndSumsToOne() {
        float[] p = Classification.softmax(new float[] {1000f, 1000f, -1000f});
        assertEquals(0.5f, p[0], 1e-7f);
        assertEquals(0.5f, p[1], 1e-7f);
        assertEquals(0f, p[2], 1e-7f);
        float[] q = Classification.softmax(new float[] {0f, (float) Math.log(3.0)});
        assertEquals(0.25f, q[0], 1e-7f);
        assertEquals(0.75f, q[1], 1e-7f);
    }

    @Test
    public void topKRanksByLogitWithTiesByIndex() {
        List<String> labels = Arrays.asList("zero", "one", "two", "three");
        List<Classification.Prediction> top = Classification.topK(new float[] {1f, 3f, 1f, 2f}, labels, 3);
        assertEquals(3, top.size());
        assertEquals("one", top.get(0).label);
        assertEquals("three", top.get(1).label);
        assertEquals(0, top.get(2).index); // tie 1f/1f: lower index first
        assertEquals(3f, top.get(0).logit, 0f);
        assertEquals(5, Classification.topK(new float[] {1, 2, 3, 4, 5, 6}, Arrays.asList("a", "b", "c", "d", "e",
                "f"), 5).size());
        assertEquals(4, Classification.topK(new float[] {1f, 3f, 1f, 2f}, labels, 5).size()); // capped
    }

    @Test(expected = IllegalArgumentException.class)
    public void labelCountMustMatchOutputs() {
        Classification.topK(new float[] {1f, 2f}, Arrays.asList("only"), 1);
    }
}
