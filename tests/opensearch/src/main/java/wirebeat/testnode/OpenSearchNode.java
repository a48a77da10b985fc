package wirebeat.testnode;

import static org.codelibs.opensearch.runner.OpenSearchRunner.newConfigs;

import java.io.IOException;
import java.io.InputStream;

import org.codelibs.opensearch.runner.OpenSearchRunner;

/**
 * Starts one OpenSearch node on 127.0.0.1 for the tests.
 *
 * Usage: OpenSearchNode HTTP_PORT BASE_DIR
 * Prints "READY <port>" once the cluster is yellow, then runs until standard input
 * closes (the test process went away) or the JVM is asked to stop.
 */
public final class OpenSearchNode {
    private OpenSearchNode() {
    }

    public static void main(final String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: OpenSearchNode HTTP_PORT BASE_DIR");
            System.exit(2);
        }
        final String port = args[0];
        final String base = args[1];
        final OpenSearchRunner runner = new OpenSearchRunner();
        runner.setMaxHttpPort(-1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (final IOException e) {
                System.err.println("close: " + e);
            }
        }));
        runner.onBuild((number, settings) -> {
            settings.put("http.port", port);
            settings.put("network.host", "127.0.0.1");
            settings.put("discovery.type", "single-node");
            settings.put("cluster.routing.allocation.disk.threshold_enabled", false);
            settings.put("action.auto_create_index", true);
        }).build(newConfigs().numOfNode(1).clusterName("wirebeat-test").basePath(base).printOnFailure());
        runner.ensureYellow();
        System.out.println("READY " + port);
        System.out.flush();
        final InputStream in = System.in;
        final byte[] buf = new byte[256];
        while (in.read(buf) >= 0) {
            // wait for EOF
        }
        System.exit(0);
    }
}
