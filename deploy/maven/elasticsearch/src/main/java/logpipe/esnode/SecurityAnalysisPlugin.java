package logpipe.esnode;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.TokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The three analysis components X-Pack security's main index asks for in its
 * settings ({@code .security-7}'s "email" analyzer), built on Lucene's own
 * classes: the distribution has them in its analysis-common module, which is
 * not on Maven Central. Without them the node cannot create the index that
 * holds native users, roles and API keys.
 *
 * <ul>
 * <li>{@code pattern_capture} filter: Lucene's PatternCaptureGroupTokenFilter;
 * settings {@code patterns} (required) and {@code preserve_original} (default true).</li>
 * <li>{@code uax_url_email} tokenizer: Lucene's UAX29URLEmailTokenizer; setting
 * {@code max_token_length} (default 255).</li>
 * <li>{@code unique} filter: drops a term already seen in the same field value.</li>
 * </ul>
 */
public final class SecurityAnalysisPlugin extends Plugin implements AnalysisPlugin {

    /** Creates the plugin; it has no settings of its own. */
    public SecurityAnalysisPlugin() {}

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of("pattern_capture", AnalysisPlugin.requiresAnalysisSettings((index, env, name, settings) -> {
            List<String> regexes = settings.getAsList("patterns");
            if (regexes.isEmpty()) {
                throw new IllegalArgumentException("filter [" + name + "] of type [pattern_capture] needs [patterns]");
            }
            Pattern[] patterns = regexes.stream().map(Pattern::compile).toArray(Pattern[]::new);
            boolean preserve = settings.getAsBoolean("preserve_original", true);
            return filter(name, in -> new PatternCaptureGroupTokenFilter(in, preserve, patterns));
        }), "unique", (index, env, name, settings) -> filter(name, UniqueFilter::new));
    }

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return Map.of("uax_url_email", (index, env, name, settings) -> {
            int max = settings.getAsInt("max_token_length", 255);
            return TokenizerFactory.newFactory(name, () -> {
                UAX29URLEmailTokenizer t = new UAX29URLEmailTokenizer();
                t.setMaxTokenLength(max);
                return t;
            });
        });
    }

    private interface Wrap {
        TokenStream apply(TokenStream in);
    }

    private static TokenFilterFactory filter(String name, Wrap wrap) {
        return new TokenFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public TokenStream create(TokenStream in) {
                return wrap.apply(in);
            }
        };
    }

    /** Passes each distinct term of a stream once. */
    private static final class UniqueFilter extends TokenFilter {
        private final CharTermAttribute term = addAttribute(CharTermAttribute.class);
        private final CharArraySet seen = new CharArraySet(8, false);

        UniqueFilter(TokenStream in) {
            super(in);
        }

        @Override
        public boolean incrementToken() throws IOException {
            while (input.incrementToken()) {
                if (seen.contains(term.buffer(), 0, term.length()) == false) {
                    char[] copy = new char[term.length()];
                    System.arraycopy(term.buffer(), 0, copy, 0, copy.length);
                    seen.add(copy);
                    return true;
                }
            }
            return false;
        }

        @Override
        public void reset() throws IOException {
            super.reset();
            seen.clear();
        }
    }
}
