package org.elasticsearch.plugins;

import org.elasticsearch.Build;
import org.elasticsearch.action.admin.cluster.node.info.PluginsAndModules;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.spi.SPIClassIterator;

import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.net.URL;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A plugin service for logpipe's test node whose plugins are classes already
 * on the JVM's class path (no modules/ or plugins/ folders exist: the jars
 * come from Maven Central and are all on one flat class path).
 *
 * It lives in this package because the record that describes a loaded plugin
 * is package-private.
 */
public final class ClasspathPluginsService extends PluginsService {

    /**
     * A plugin to load: the name Elasticsearch knows it by (the name other
     * plugins' extended.plugins refer to), its main class, and the names of
     * the plugins it extends.
     */
    public record Spec(String name, Class<? extends Plugin> type, List<String> extendedPlugins) {}

    private final List<LoadedPlugin> loaded;
    private final Set<URL> pluginJars;

    /**
     * Instantiates each plugin in {@code specs}, in order, and hands the
     * extensible ones the plugins that extend them. {@code loader} is the
     * node's plugin loader; it holds no plugin layers here.
     */
    public ClasspathPluginsService(Environment environment, PluginsLoader loader, List<Spec> specs) {
        super(environment.settings(), environment.configDir(), loader);
        Settings settings = environment.settings();
        List<LoadedPlugin> list = new ArrayList<>();
        for (Spec spec : specs) {
            Plugin instance = instantiate(spec.type(), settings, environment.configDir());
            PluginDescriptor descriptor = new PluginDescriptor(
                spec.name(),
                "loaded from the class path by logpipe's test launcher",
                Build.current().version(),
                Build.current().version(),
                Integer.toString(Runtime.version().feature()),
                spec.type().getName(),
                null,
                spec.extendedPlugins(),
                false,
                false,
                false,
                false
            );
            list.add(new LoadedPlugin(descriptor, instance, spec.type().getClassLoader()));
        }
        loadExtensions(list);
        this.loaded = List.copyOf(list);
        Set<URL> jars = new HashSet<>();
        for (Spec spec : specs) {
            for (Class<?> c = spec.type(); c != null && c != Plugin.class; c = c.getSuperclass()) {
                jars.add(jarOf(c));
            }
        }
        this.pluginJars = Set.copyOf(jars);
    }

    private static URL jarOf(Class<?> c) {
        return c.getProtectionDomain().getCodeSource().getLocation();
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
     * Every plugin here shares the system class loader, so META-INF/services
     * is scanned once, there; that finds the providers of plugins whose jars
     * are on the class path but which this node does not load (X-Pack's, on a
     * node without security) too, so only providers from the jars of the
     * loaded plugins' classes (and their superclasses) count. Each is
     * created once: with the first plugin its one-argument constructor
     * accepts (a subclass of the plugin it was written for counts, which the
     * server's own check does not allow), else with its no-argument
     * constructor.
     */
    @Override
    public <T> List<? extends T> loadServiceProviders(Class<T> service) {
        Map<Class<?>, T> byClass = new LinkedHashMap<>();
        SPIClassIterator<T> it = SPIClassIterator.get(service, ClasspathPluginsService.class.getClassLoader());
        while (it.hasNext()) {
            Class<? extends T> provider = it.next();
            if (byClass.containsKey(provider) == false && pluginJars.contains(jarOf(provider))) {
                byClass.put(provider, create(provider));
            }
        }
        return List.copyOf(byClass.values());
    }

    private <T> T create(Class<? extends T> provider) {
        Constructor<?> none = null;
        try {
            for (Constructor<?> c : provider.getConstructors()) {
                if (c.getParameterCount() == 0) {
                    none = c;
                } else if (c.getParameterCount() == 1) {
                    for (LoadedPlugin p : loaded) {
                        if (c.getParameterTypes()[0].isInstance(p.instance())) {
                            return provider.cast(c.newInstance(p.instance()));
                        }
                    }
                }
            }
            if (none == null) {
                throw new IllegalStateException("no constructor of " + provider.getName() + " takes a loaded plugin or nothing");
            }
            return provider.cast(none.newInstance());
        } catch (InstantiationException | IllegalAccessException | InvocationTargetException e) {
            throw new IllegalStateException("cannot create " + provider.getName(), e);
        }
    }
}
