// Package httpdlog parses Apache httpd access and error log lines into
// Elastic Common Schema (ECS) fields.
//
// It is a pure package: no I/O, no clock, no goroutines. Each parse is a
// single hand-written pass over the line. Results are plain struct fields;
// strings in them share the input line's memory unless unescaping or UTF-8
// repair made a copy, so parsing a well-formed line allocates nothing.
//
// # Formats
//
// Access lines: common (%h %l %u %t "%r" %>s %b), combined (common plus
// "%{Referer}i" "%{User-agent}i") and vhost_combined (combined prefixed by
// "%v:%p "), as well as a vhost prefix in front of the common format. Text
// after the last field a format defines is ignored, because many sites append
// their own fields (%D, "%{X-Forwarded-For}i", ...) to these formats.
//
// Error lines: the httpd 2.2 format
//
//	[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] message
//
// and the httpd 2.4 default ErrorLogFormat
//
//	[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:64033] AH00128: File does not exist: ...
//
// with or without tid, pid, client, with "[remote ...]" instead of
// "[client ...]", with the "file.c(123): " prefix httpd writes at debug and
// trace levels, and with the "(13)Permission denied: " status prefix.
//
// A line that fits none of these is refused with an error that matches
// [ErrNoMatch] (errors.Is), and the struct is left zero: the caller keeps the
// line unparsed and tags it _httpdparsefailure. A line is never half parsed.
//
// # Field decisions
//
//   - The raw line. Every parsed line, access or error, keeps its raw text in
//     event.original, which the caller writes: it is the one place where the
//     raw line always is. message holds the line's human-readable text: for
//     an error line the message text after the prefixes ([Error.Message]);
//     an access line has no text besides itself, so for it message stays the
//     raw line, as the shipper sent it. An unparsed line keeps its raw text in
//     message only, like any other event the indexer does not parse.
//   - @timestamp is returned as a time.Time. Access lines carry their zone
//     offset and keep it. Error lines carry no zone: the caller passes the
//     *time.Location to read them in (nil means UTC); fractional seconds of
//     the 2.4 format are kept.
//   - "-" means absent for user.name, http.request.referrer and
//     user_agent.original, and so does an empty value (httpd writes an empty
//     user name as ""). For %b, httpd documents "-" as "no bytes were sent",
//     so http.response.body.bytes is 0 then, not absent. vhost_combined as
//     Debian ships it logs %O (bytes sent, headers included) in that place;
//     it lands in http.response.body.bytes too, as no format tells them apart.
//   - The host (%h) is source.address; it is copied to source.ip when it is
//     an IPv4 or IPv6 address (an IPv6 zone, "%eth0", is left out of
//     source.ip because Elasticsearch's ip type refuses it) and to
//     source.domain when it is a host name (HostnameLookups On).
//   - The virtual host and port of vhost_combined (%v:%p, the server's own
//     name and port) describe the destination of the request:
//     destination.address and destination.port, with destination.domain or
//     destination.ip as for the source. url.domain is not used because %v is
//     the configured ServerName, not the host the client asked for.
//   - The request line (%r) is split into http.request.method, url.original
//     and http.version ("1.1" from "HTTP/1.1"). "-", a single word and
//     lines whose first word is no HTTP method token (a TLS handshake sent
//     to a plain-HTTP port, say) yield none of the three. A request with no
//     protocol (HTTP/0.9 style, or a truncated request) yields method and URL
//     but no version; a URL containing spaces is kept whole.
//   - event.outcome is "failure" for a status of 400 or more, else "success".
//   - Error lines: log.level (emerg, alert, crit, error, warn, notice, info,
//     debug, trace1 ... trace8), apache.error.module (ECS has no field for it;
//     this is the name Filebeat's apache module uses), process.pid,
//     process.thread.id, source.address/ip/port from "[client ...]" or
//     "[remote ...]" (httpd says remote for connections without a scoreboard
//     slot; the address is still the peer of that connection, which for
//     mod_proxy's connections to a backend is the backend server), error.code
//     for the AHnnnnn code, log.origin.file.name and .line from the debug
//     prefix, and http.request.referrer from the ", referer: ..." httpd
//     appends. message is the text after the time, level, pid and file
//     prefixes with the client bracket taken out; it keeps the status prefix,
//     the AH code and the referer suffix, so it reads as httpd wrote it.
//
// # Escapes and UTF-8
//
// httpd writes the request line, user, referrer and user agent with \" \\ \b
// \n \r \t \v and \xhh escapes, and error messages with the same escapes
// except \". These are turned back into the bytes they stand for. Output is
// always valid UTF-8, because it goes into JSON: bytes that, once unescaped,
// form valid UTF-8 (a user agent's "\xe2\x80\x99") become those characters;
// a byte that does not, whether it was escaped or raw in the line, is written
// as the four characters \xhh (lower-case hex), as httpd wrote it. An unknown
// escape such as \q is kept as is.
//
// # Emitting fields
//
// The indexer merges these fields into the shipper's event, which already has
// @timestamp, message, event and log objects. So the fields are split:
//
//   - AppendJSONFields appends the top-level members only this package fills
//     (source, destination, user, http, url, user_agent for access lines;
//     source, process, error, apache, http for error lines), nested as ECS
//     objects, for splicing into a JSON object being written.
//   - AppendEventMembers ([Access]) and AppendLogMembers ([Error]) append the
//     members that go inside the event and log objects the caller writes.
//   - Timestamp and, for error lines, Message are plain fields the caller
//     writes itself.
//   - Fields returns all of it, the shared keys included, as nested maps for
//     callers that build documents as maps.
//
// The Append methods write a comma before a member unless dst is empty or
// ends with '{' or ','. Every string field of [Access] and [Error] is valid
// UTF-8, so any JSON encoder can write them too.
package httpdlog
