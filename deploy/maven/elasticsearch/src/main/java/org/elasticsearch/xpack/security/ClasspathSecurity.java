package org.elasticsearch.xpack.security;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.elasticsearch.action.ActionRequest;
import org.elasticsearch.action.ActionResponse;
import org.elasticsearch.common.settings.Settings;

import java.util.ArrayList;
import java.util.List;

/**
 * X-Pack security as logpipe's test node loads it: the SAML realm's
 * libraries (OpenSAML, Shibboleth) are not on Maven Central, so the transport
 * actions whose classes need them cannot be bound; this plugin leaves those
 * actions out, and logs each one, instead of failing the node. Everything
 * else (TLS, the file and native realms, API keys, roles) is the plugin's own.
 *
 * It sits in the plugin's package because the server lets only classes in
 * org.elasticsearch.xpack install the REST interceptor that authenticates
 * every request.
 */
public final class ClasspathSecurity extends Security {

    private static final Logger logger = LogManager.getLogger(ClasspathSecurity.class);

    /** Creates the plugin for a node with these settings. */
    public ClasspathSecurity(Settings settings) {
        super(settings);
    }

    @Override
    public List<ActionHandler<? extends ActionRequest, ? extends ActionResponse>> getActions() {
        List<ActionHandler<? extends ActionRequest, ? extends ActionResponse>> usable = new ArrayList<>();
        for (ActionHandler<? extends ActionRequest, ? extends ActionResponse> h : super.getActions()) {
            try {
                h.getTransportAction().getConstructors();
                usable.add(h);
            } catch (NoClassDefFoundError e) {
                logger.info("logpipe-es: left out action [{}]: {} is not on the class path", h.getAction().name(), e.getMessage());
            }
        }
        return usable;
    }
}
