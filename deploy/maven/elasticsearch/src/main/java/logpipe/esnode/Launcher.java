package logpipe.esnode;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.config.Configurator;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.ClasspathNode;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.ClasspathPluginsService;
import org.elasticsearch.transport.netty4.Netty4Plugin;
import org.elasticsearch.xpack.core.XPackPlugin;
import org.elasticsearch.xpack.security.ClasspathSecurity;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Runs one Elasticsearch node in this JVM for logpipe's tests.
 *
 * <pre>
 * java -cp 'JARS/*' logpipe.esnode.Launcher HOME [--xpack-security] [setting=value ...]
 * </pre>
 *
 * HOME holds config/, data/, logs/ and tmp/ and may be reused by a later run
 * (a restart keeps the indices). Settings given as arguments override the
 * defaults below, which make a single-node cluster bound to 127.0.0.1 with no
 * disk watermarks. The node's HTTP layer is the Netty 4 plugin, loaded from
 * the class path with {@link RootInfoPlugin}. With --xpack-security it also loads X-Pack
 * core and security (see {@link org.elasticsearch.xpack.security.ClasspathSecurity}) and
 * the analysis components the security index needs ({@link SecurityAnalysisPlugin});
 * security's own settings (xpack.security.*) are then given as arguments. SIGTERM closes
 * the node before the JVM exits.
 */
public final class Launcher {

    private Launcher() {}

    /** The line printed once the node has started; the Go harness does not need it but people reading the log do. */
    static final String READY = "logpipe-es: node started";

    /** The argument that loads X-Pack core and security as well. */
    static final String SECURITY_FLAG = "--xpack-security";

    private static final String LOG4J_CONFIG = String.join(
        "\n",
        "status = error",
        "appender.out.type = Console",
        "appender.out.name = out",
        "appender.out.target = SYSTEM_OUT",
        "appender.out.layout.type = PatternLayout",
        "appender.out.layout.pattern = %d{yyyy-MM-dd'T'HH:mm:ss,SSS} %-5p %c{1.} [%node_name] %m%n",
        "rootLogger.level = info",
        "rootLogger.appenderRef.out.ref = out",
        "logger.deprecation.name = org.elasticsearch.deprecation",
        "logger.deprecation.level = error",
        ""
    );

    /** Starts the node and blocks until the JVM is told to stop. */
    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: Launcher HOME [" + SECURITY_FLAG + "] [setting=value ...]");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        Path config = home.resolve("config");
        Files.createDirectories(config);
        Files.createDirectories(home.resolve("tmp"));
        Files.writeString(config.resolve("log4j2.properties"), LOG4J_CONFIG, StandardCharsets.UTF_8);

        Settings.Builder b = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", "logpipe-test")
            .put("node.name", "logpipe-es")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", "9200")
            .put("transport.port", "9300")
            // The disk may be nearly full on test machines; never refuse shards for it.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            // A small heap makes the real-memory breaker trip on harmless bursts.
            .put("indices.breaker.total.use_real_memory", false)
            // Tests clean up with wildcard deletes.
            .put("action.destructive_requires_name", false);
        boolean security = false;
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals(SECURITY_FLAG)) {
                security = true;
                continue;
            }
            int eq = args[i].indexOf('=');
            if (eq <= 0) {
                System.err.println("logpipe-es: argument " + args[i] + " is not setting=value");
                System.exit(2);
            }
            b.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        Settings settings = b.build();

        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), config, () -> settings.get("node.name"));
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName(env.settings().get("node.name"));
        LogConfigurator.configure(env, true);
        Thread.setDefaultUncaughtExceptionHandler(Launcher::uncaught);

        // Netty 4 is the HTTP and transport layer; RootInfoPlugin stands in for the
        // rest-root module, which is not on Maven Central. The names are the
        // plugins' own: x-pack-security names x-pack-core as the plugin it extends.
        List<ClasspathPluginsService.Spec> plugins = new ArrayList<>();
        plugins.add(new ClasspathPluginsService.Spec("transport-netty4", Netty4Plugin.class, List.of()));
        plugins.add(new ClasspathPluginsService.Spec("logpipe-root-info", RootInfoPlugin.class, List.of()));
        if (security) {
            plugins.add(new ClasspathPluginsService.Spec("logpipe-security-analysis", SecurityAnalysisPlugin.class, List.of()));
            plugins.add(new ClasspathPluginsService.Spec("x-pack-core", XPackPlugin.class, List.of()));
            plugins.add(new ClasspathPluginsService.Spec("x-pack-security", ClasspathSecurity.class, List.of("x-pack-core")));
        }
        Node node;
        try {
            node = ClasspathNode.create(env, plugins);
        } catch (Throwable t) {
            fail("cannot construct the node", t);
            return;
        }
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> close(node, closed), "logpipe-es-shutdown"));
        try {
            node.start();
        } catch (Throwable t) {
            fail("cannot start the node", t);
            return;
        }
        System.out.println(READY);
        System.out.flush();
        closed.await();
    }

    private static void close(Node node, CountDownLatch closed) {
        try {
            node.prepareForClose();
            node.close();
            if (node.awaitClose(20, TimeUnit.SECONDS) == false) {
                System.out.println("logpipe-es: node did not close within 20s");
            } else {
                System.out.println("logpipe-es: node closed");
            }
        } catch (IOException | RuntimeException e) {
            System.out.println("logpipe-es: error while closing the node: " + e);
            e.printStackTrace(System.out);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            System.out.flush();
            Configurator.shutdown((LoggerContext) LogManager.getContext(false));
            closed.countDown();
        }
    }

    private static void fail(String what, Throwable t) {
        System.out.println("logpipe-es: " + what + ": " + t);
        t.printStackTrace(System.out);
        System.out.flush();
        // halt, not exit: the shutdown hook would try to close a half-built node.
        Runtime.getRuntime().halt(1);
    }

    private static void uncaught(Thread thread, Throwable t) {
        System.out.println("logpipe-es: uncaught exception in thread " + thread.getName() + ": " + t);
        t.printStackTrace(System.out);
        System.out.flush();
        if (t instanceof Error && (t instanceof AssertionError) == false) {
            // An Error (out of memory, stack overflow, internal) leaves the node in an unknown state.
            Runtime.getRuntime().halt(3);
        }
    }
}
