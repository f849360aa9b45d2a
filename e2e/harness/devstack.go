package harness

import "logpipe/internal/devstack"

// The launchers moved to internal/devstack. These names forward to it for
// e2e/bench/cmd/indexerbench, the last user of them here; once it imports
// devstack itself, this file goes, and with it the testing import of that
// command.

// Elasticsearch is devstack.Elasticsearch.
type Elasticsearch = devstack.Elasticsearch

// ElasticsearchOptions is devstack.ElasticsearchOptions.
type ElasticsearchOptions = devstack.ElasticsearchOptions

// StartElasticsearch is devstack.StartElasticsearch.
var StartElasticsearch = devstack.StartElasticsearch

// StartProcess is devstack.StartProcess.
var StartProcess = devstack.StartProcess

// FreePort is devstack.FreePort.
var FreePort = devstack.FreePort

// RepoRoot is devstack.RepoRoot.
var RepoRoot = devstack.RepoRoot

// JavaPath is devstack.JavaPath.
var JavaPath = devstack.JavaPath
