// Pins hey (github.com/rakyll/hey), the HTTP load generator students' test scripts call;
// built static and put into the script-runner image (/usr/local/bin/hey).
module autoscale-conformance/ci/localcluster/hey

go 1.26.0

tool github.com/rakyll/hey

require (
	github.com/rakyll/hey v0.1.5 // indirect
	golang.org/x/net v0.48.0 // indirect
	golang.org/x/text v0.33.0 // indirect
)
