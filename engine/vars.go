package engine

// connectionVars are the variables every method of a connection has.
var connectionVars = []string{"connection", "connectorParameters", "credentials"}

// requestVars are the variables taken from an incoming request.
var requestVars = []string{"method", "query", "data", "body", "headers", "rawBody"}

func with(base []string, more ...string) []string {
	return append(append([]string(nil), base...), more...)
}

// methodVars returns the variables a method declares (DESIGN.md §4 "Method variables and
// results"), besides `now`.
func methodVars(name string) []string {
	switch name {
	case MethodSubscribe:
		return with(connectionVars, "webhookUri", "webhookSecret", "parameters", "subscriptionId")
	case MethodHandle:
		return eventHandleVars()
	case MethodUnsubscribe:
		return with(connectionVars, "state", "parameters")
	case MethodRefresh:
		return with(connectionVars, "state", "webhookUri", "webhookSecret", "parameters")
	case MethodGetEventsSelector, MethodList:
		return with(connectionVars, "parameters")
	case MethodDelete:
		return with(connectionVars, "webhook", "parameters")
	}
	return with(connectionVars)
}

// eventHandleVars are the variables of an event's handle (and of its verify block).
// webhookSecret is there so that a delivery arriving while subscribe still runs (GitHub's
// first ping, Graph's validation) can be verified before the state is stored.
func eventHandleVars() []string {
	return with(with(connectionVars, requestVars...), "state", "parameters", "webhookSecret")
}

// globalHandleVars are the variables of a global webhook's handle (and verify): no
// connection, and parameters are the workspace's connector parameters.
func globalHandleVars() []string {
	return with(requestVars, "parameters")
}

// methodsOf lists the methods an event of type t may declare.
func methodsOf(t ImplementationType) []string {
	if t == TypeGlobalWebhook {
		return []string{MethodGetEventsSelector, MethodHandle}
	}
	return []string{MethodSubscribe, MethodHandle, MethodUnsubscribe, MethodRefresh, MethodList, MethodDelete}
}

// allMethods lists every method name, for messages.
var allMethods = []string{MethodSubscribe, MethodHandle, MethodUnsubscribe, MethodRefresh, MethodList, MethodDelete, MethodGetEventsSelector}

func canonicalMethod(name string) string {
	if name == AliasGetEventSelector {
		return MethodGetEventsSelector
	}
	return name
}
