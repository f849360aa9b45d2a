package org.elasticsearch.plugins;

import org.elasticsearch.Build;
import org.elasticsearch.action.admin.cluster.node.info.PluginsAndModules;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.jdk.ModuleQualifiedExportsService;
import org.elasticsearch.plugins.spi.SPIClassIterator;

import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A plugin service for logpipe's test node whose plugins are classes already
 * on the JVM's class path (no modules/ or plugins/ folders exist: the jars
 * come from Maven Central and are all on one flat class path).
 *
 * It lives in this package because the record that describes a loaded plugin
 * is package-private.
 */
public final class ClasspathPluginsService extends PluginsService {

    private final List<LoadedPlugin> loaded;

    /**
     * Instantiates each class in {@code pluginClasses} and treats it as a
     * loaded plugin of the boot layer's unnamed module.
     */
    public ClasspathPluginsService(Settings settings, Environment environment, List<Class<? extends Plugin>> pluginClasses) {
        // No folders to scan: the parent finds nothing and only sets up its bookkeeping.
        super(settings, environment.configFile(), null, null);
        List<LoadedPlugin> list = new ArrayList<>();
        for (Class<? extends Plugin> type : pluginClasses) {
            Plugin instance = instantiate(type, settings, environment.configFile());
            PluginDescriptor descriptor = new PluginDescriptor(
                type.getSimpleName(),
                "loaded from the class path by logpipe's test launcher",
                Build.current().version(),
                Build.current().version(),
                Integer.toString(Runtime.version().feature()),
                type.getName(),
                null,
                List.of(),
                false,
                false,
                false,
                false
            );
            list.add(new LoadedPlugin(descriptor, instance, type.getClassLoader(), ModuleLayer.boot()));
        }
        loadExtensions(list);
        this.loaded = List.copyOf(list);
    }

    private static Plugin instantiate(Class<? extends Plugin> type, Settings settings, Path configDir) {
        Constructor<?>[] ctors = type.getConstructors();
        if (ctors.length != 1) {
            throw new IllegalStateException("plugin " + type.getName() + " must have exactly one public constructor");
        }
        Constructor<?> c = ctors[0];
        Class<?>[] params = c.getParameterTypes();
        try {
            if (params.length == 0) {
                return (Plugin) c.newInstance();
            }
            if (params.length == 1 && params[0] == Settings.class) {
                return (Plugin) c.newInstance(settings);
            }
            if (params.length == 2 && params[0] == Settings.class && params[1] == Path.class) {
                return (Plugin) c.newInstance(settings, configDir);
            }
        } catch (InstantiationException | IllegalAccessException | InvocationTargetException e) {
            throw new IllegalStateException("cannot create plugin " + type.getName(), e);
        }
        throw new IllegalStateException("plugin " + type.getName() + " has an unsupported constructor " + c);
    }

    @Override
    protected List<LoadedPlugin> plugins() {
        return loaded;
    }

    @Override
    public PluginsAndModules info() {
        List<PluginRuntimeInfo> infos = new ArrayList<>();
        for (LoadedPlugin p : loaded) {
            infos.add(new PluginRuntimeInfo(p.descriptor()));
        }
        return new PluginsAndModules(infos, List.of());
    }

    /**
     * Every plugin here shares the system class loader, so scanning
     * META-INF/services once per plugin would find the same providers again
     * and again. Each provider class is created once, with the first plugin
     * whose type its constructor accepts.
     */
    @Override
    public <T> List<? extends T> loadServiceProviders(Class<T> service) {
        Map<Class<?>, T> byClass = new LinkedHashMap<>();
        for (LoadedPlugin p : loaded) {
            SPIClassIterator<T> it = SPIClassIterator.get(service, p.loader());
            while (it.hasNext()) {
                Class<? extends T> provider = it.next();
                if (byClass.containsKey(provider) || accepts(provider, p.instance()) == false) {
                    continue;
                }
                byClass.put(provider, createExtension(provider, service, p.instance()));
            }
        }
        return List.copyOf(byClass.values());
    }

    private static boolean accepts(Class<?> provider, Plugin plugin) {
        for (Constructor<?> c : provider.getConstructors()) {
            if (c.getParameterCount() == 1 && c.getParameterTypes()[0].isInstance(plugin) == false) {
                return false;
            }
        }
        return true;
    }

    /** The server runs from the class path, not as a named module, so there is nothing to export. */
    @Override
    protected void addServerExportsService(Map<String, List<ModuleQualifiedExportsService>> qualifiedExports) {}
}
