export { Proxy, fatalError, type Address, type EndpointKind, type ProxyOptions, type RouteTarget, type Topology } from './proxy.js';
