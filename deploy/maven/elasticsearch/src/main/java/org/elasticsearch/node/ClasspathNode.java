package org.elasticsearch.node;

import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.ClasspathPluginsService;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;

import java.util.List;
import java.util.Map;
import java.util.Set;

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
    public static Node create(Environment environment, List<ClasspathPluginsService.Spec> plugins) {
        NodeServiceProvider provider = new NodeServiceProvider() {
            @Override
            PluginsService newPluginService(Environment env, PluginsLoader loader) {
                return new ClasspathPluginsService(env, loader, plugins);
            }
        };
        // No modules/ or plugins/ folders: the loader holds no layers, and
        // the server is not a named module, so there are no exports to add.
        PluginsLoader none = PluginsLoader.createPluginsLoader(Set.of(), Set.of(), Map.of(), false);
        return new Node(NodeConstruction.prepareConstruction(environment, none, provider, true));
    }
}
