package org.burnedge.demo.logic;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;

/** Label handling and top-k: logits to (label, probability) pairs. */
public final class Classification {

    /** One ranked class. */
    public static final class Prediction {
        public final int index;
        public final String label;
        public final float probability;
        public final float logit;

        public Prediction(int index, String label, float probability, float logit) {
            this.index = index;
            this.label = label;
            this.probability = probability;
            this.logit = logit;
        }

        @Override
        public String toString() {
            return String.format(java.util.Locale.ROOT, "%s %.1f%%", label, 100f * probability);
        }
    }

    private Classification() {
    }

    /** Parses labels.txt: one label per line, trailing newline optional, \r\n accepted; blank lines are kept. */
    public static List<String> parseLabels(String text) {
        List<String> out = new ArrayList<String>();
        String[] lines = text.split("\n", -1);
        int n = lines.length;
        if (n > 0 && lines[n - 1].isEmpty()) {
            n--; // trailing newline
        }
        for (int k = 0; k < n; k++) {
            String line = lines[k];
            out.add(line.endsWith("\r") ? line.substring(0, line.length() - 1) : line);
        }
        return out;
    }

    /** Numerically stable softmax (subtracts the max), in double then rounded to float. */
    public static float[] softmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double[] e = new double[logits.length];
        double sum = 0;
        for (int k = 0; k < logits.length; k++) {
            e[k] = Math.exp(logits[k] - max);
            sum += e[k];
        }
        float[] out = new float[logits.length];
        for (int k = 0; k < logits.length; k++) {
            out[k] = (float) (e[k] / sum);
        }
        return out;
    }

    /**
     * The k most likely classes, best first; ties keep the lower class index first. k is capped at the number of
     * classes. The number of logits must equal the number of labels.
     */
    public static List<Prediction> topK(final float[] logits, List<String> labels, int k) {
        if (logits.length != labels.size()) {
            throw new IllegalArgumentException("model gives " + logits.length + " outputs but there are "
                    + labels.size() + " labels");
        }
        if (k < 1) {
            throw new IllegalArgumentException("k must be >= 1, got " + k);
        }
        float[] probs = softmax(logits);
        List<Integer> order = new ArrayList<Integer>();
        for (int c = 0; c < logits.length; c++) {
            order.add(c);
        }
        Collections.sort(order, new Comparator<Integer>() {
            @Override
            public int compare(Integer a, Integer b) {
                int byLogit = Float.compare(logits[b], logits[a]);
                return byLogit != 0 ? byLogit : Integer.compare(a, b);
            }
        });
        List<Prediction> out = new ArrayList<Prediction>();
        for (int r = 0; r < Math.min(k, order.size()); r++) {
            int c = order.get(r);
            out.add(new Prediction(c, labels.get(c), probs[c], logits[c]));
        }
        return out;
    }
}
