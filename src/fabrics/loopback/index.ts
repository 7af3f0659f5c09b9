export { LoopbackFabric, LoopbackNexus, MutableLunMap, type LoopbackCommandOptions, type LoopbackNexusOptions, type LoopbackResponse } from './loopback.js';
