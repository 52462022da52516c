export { robotWorkflow } from './robot';
