export { robotWorkflow } from './robot';
export { partnerDeliveryWorkflow } from './partner-delivery';
export { lidCycleWorkflow } from './lid-cycle';
export { commandWorkflow } from './command';
export { deploymentWorkflow } from './deployment';
export { softwareStatusPollerWorkflow } from './software-status';
