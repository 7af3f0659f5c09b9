// The live dashboard (`lunkit top`): a pure view model plus a blessed renderer.
export { reduce, initialState, sessionRows, lunRows, treeLines, bootlabTreeLines, PANES, type DashboardState, type DashboardEvent, type PaneId } from './model.js';
export { drawFrame, layout } from './view.js';
export { DashboardRenderer, terminalFor, keyName, type DashboardIo } from './render.js';
export { runDashboard, wantsAscii, type SnapshotSource, type SnapshotFeed, type SnapshotSink, type DashboardOptions } from './app.js';
