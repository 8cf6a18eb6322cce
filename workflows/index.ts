// Every workflow type the cluster's workflow worker runs.
export { healService } from './heal-service.js';
export { controller } from './controller.js';
export { failover } from './failover.js';
export { resync } from './resync.js';
export { switchover } from './switchover.js';
export { alert } from './alert.js';
export { clone } from './clone.js';
export { imageCapture, imageDeploy } from './image.js';
export { imageRecipe } from './image-recipe.js';
