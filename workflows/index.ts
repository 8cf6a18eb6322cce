// Every workflow type the cluster's workflow worker runs.
export { healService } from './heal-service.js';
