package org.elasticsearch.node;

import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.ClasspathPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsService;

import java.util.List;

/**
 * Builds a {@link Node} whose plugins are classes on the class path.
 *
 * The node's construction hooks (the construction record and the service
 * provider that makes the plugin service) are package-private, hence this
 * package.
 */
public final class ClasspathNode {

    private ClasspathNode() {}

    /** Constructs, but does not start, a node for {@code environment} with the given plugin classes loaded. */
    public static Node create(Environment environment, List<Class<? extends Plugin>> pluginClasses) {
        NodeServiceProvider provider = new NodeServiceProvider() {
            @Override
            PluginsService newPluginService(Environment env, Settings settings) {
                return new ClasspathPluginsService(settings, env, pluginClasses);
            }
        };
        return new Node(NodeConstruction.prepareConstruction(environment, provider, true));
    }
}
