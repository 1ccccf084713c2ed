package org.burnedge.demo.logic;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;

/** Reading a whole stream, shared by the app (assets) and the host tool (files). */
public final class Streams {
    private Streams() {}

    /** Every byte of {@code in}; the stream is closed afterwards, also on failure. */
    public static byte[] readAll(InputStream in) throws IOException {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[8192];
            int n;
            while ((n = in.read(buf)) > 0) {
                out.write(buf, 0, n);
            }
            return out.toByteArray();
        } finally {
            in.close();
        }
    }
}
